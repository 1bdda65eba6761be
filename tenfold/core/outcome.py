"""What a study measured, in the shape every study publishes (the metrics contract).

A study's `outcome` module turns its measured results into an `Outcome`: the claims (with `holds` computed), the
few headline numbers its report's first table shows, and everything else (tables, notes, figures, details).
Publishing writes two files from it:

- `metrics/<slug>.json` (the DVC metric; small and flat): `claims` as `{id: {measured, target, holds}}` plus the
  headline numbers, so `dvc metrics show` and `dvc exp show` stay readable;
- `results/<slug>.json` (a DVC output): the full claims (`id, claim, paper, measured, target, comparison, holds,
  note`), tables, notes, figures and details, from which `reports/<slug>.md` is rendered.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from tenfold.core.claims import Claim

MAX_HEADLINE = 20


@dataclass
class Outcome:
    claims: list[Claim]
    headline: dict[str, float | int | None]
    description: str = ""
    tables: dict[str, dict] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    figures: list[dict] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    passed: bool = False  # the study's acceptance check: moves the registered model's alias

    def __post_init__(self) -> None:
        if len(self.headline) > MAX_HEADLINE:
            raise ValueError(
                f"{len(self.headline)} headline numbers (at most {MAX_HEADLINE}): move the rest to `details`"
            )
        bad = [k for k, v in self.headline.items() if v is not None and not isinstance(v, (int, float))]
        if bad:
            raise ValueError(f"headline values must be numbers: {bad}")
        clash = {"claims", "study"} & set(self.headline)
        if clash:
            raise ValueError(f"reserved headline names: {sorted(clash)}")

    def metrics(self) -> dict:
        """The DVC metrics file: claims as {id: {measured, target, holds}} and the headline numbers."""
        return {
            "claims": {c.id: {"measured": c.measured, "target": c.target, "holds": c.holds} for c in self.claims},
            **{k: _number(v) for k, v in self.headline.items()},
        }

    def results(self, study: str, arxiv: str, title: str, run: dict | None = None) -> dict:
        """The results file: everything the report is rendered from."""
        return {
            "study": study,
            "arxiv": arxiv,
            "title": title,
            "description": self.description,
            "claims": [c.as_dict() for c in self.claims],
            "headline": {k: _number(v) for k, v in self.headline.items()},
            **self.details,
            "tables": self.tables,
            "figures": self.figures,
            "notes": self.notes,
            "run": run or {},
        }


def _number(v):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return v


def claim_notes(
    claims: list[Claim], reproduced: str = "Reproduced at this scale", missed: str = "Not reproduced at this scale"
) -> list[str]:
    """One note per claim: whether it held and what was measured against which target."""
    return [
        f"{reproduced if c.holds else missed}: `{c.id}` measured "
        f"{'n/a' if c.measured is None else f'{c.measured:.3f}'} (target {c.comparison} {c.target})."
        for c in claims
    ]
