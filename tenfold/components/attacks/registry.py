"""The attack registry and the taxonomy of the dataset-security survey (arXiv:2012.10544): every attack is
registered by name with its taxonomy fields, so the survey's table is generated from code.

Adding an attack touches one module: decorate its crafting function with `register_attack(...)` and import the
module in `tenfold/components/attacks/__init__.py`. Defenses have their own registry (`components/defenses`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from tenfold.components.taxonomy import GOALS, KNOWLEDGE, LABELS, MECHANISMS, Goal, Knowledge, Label, Mechanism, check


@dataclass(frozen=True)
class AttackSpec:
    """An attack and where it sits in the survey's taxonomy. `craft(ctx, cfg) -> Poison` does the work."""

    name: str
    goal: Goal
    label: Label
    knowledge: Knowledge
    mechanism: Mechanism
    norm: str  # budget norm of the perturbation ("linf", "patch", "label")
    victim: str  # victim training the attack is designed for ("from-scratch", "fine-tune")
    paper: str
    craft: Callable = field(compare=False, repr=False)

    def row(self) -> dict:
        d = asdict(self)
        d.pop("craft")
        return d


ATTACKS: dict[str, AttackSpec] = {}


def register_attack(
    name: str, *, goal: str, label: str, knowledge: str, mechanism: str, norm: str, victim: str, paper: str
):
    """Decorator: register `fn` as the crafting function of attack `name` with its taxonomy."""
    check(goal, GOALS, "goal", name)
    check(label, LABELS, "label", name)
    check(knowledge, KNOWLEDGE, "knowledge", name)
    check(mechanism, MECHANISMS, "mechanism", name)

    def deco(fn):
        if name in ATTACKS:
            raise ValueError(f"attack {name!r} registered twice")
        ATTACKS[name] = AttackSpec(name, goal, label, knowledge, mechanism, norm, victim, paper, fn)
        return fn

    return deco
