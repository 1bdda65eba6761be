"""The defense registry: every defense is registered by name with its stage in the survey's taxonomy.

Adding a defense touches one module: decorate its builder with `register_defense(...)` and import the module in
`tenfold/components/defenses/__init__.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Literal

from tenfold.components.taxonomy import STAGES, Stage, check


@dataclass(frozen=True)
class DefenseSpec:
    """A defense and its stage. `kind` says how the benchmark applies it:
    `train` (changes victim training), `filter` (removes training points), `detect` (flags test inputs)."""

    name: str
    stage: Stage
    kind: Literal["train", "filter", "detect", "none"]
    needs_clean_data: bool
    reports: str
    paper: str
    build: Callable = field(compare=False, repr=False)

    def row(self) -> dict:
        d = asdict(self)
        d.pop("build")
        return d


DEFENSES: dict[str, DefenseSpec] = {}


def register_defense(name: str, *, stage: str, kind: str, needs_clean_data: bool, reports: str, paper: str):
    """Decorator: register `fn` (building the defense from its params) as defense `name`."""
    check(stage, STAGES, "stage", name)

    def deco(fn):
        if name in DEFENSES:
            raise ValueError(f"defense {name!r} registered twice")
        DEFENSES[name] = DefenseSpec(name, stage, kind, needs_clean_data, reports, paper, fn)
        return fn

    return deco
