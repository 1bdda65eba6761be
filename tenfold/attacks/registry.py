"""One registry for the dataset-security survey (arXiv:2012.10544): every attack and defense is a component
registered by name together with its taxonomy fields, so the survey's table is generated from code.

Adding a component touches one module: decorate its entry function with `register_attack(...)` or
`register_defense(...)` (tenfold.defenses) and import the module in the package `__init__`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable, Literal, get_args

Goal = Literal["targeted", "backdoor", "availability"]
Label = Literal["clean-label", "dirty-label"]
Knowledge = Literal["white-box", "grey-box", "transfer", "from-scratch"]
Mechanism = Literal["trigger patch", "feature collision", "gradient matching", "label flipping",
                    "error-maximizing perturbation", "error-minimizing perturbation"]
Stage = Literal["data filtering", "test-time detection", "robust training", "augmentation",
                "differential privacy", "none"]

GOALS, LABELS, KNOWLEDGE = get_args(Goal), get_args(Label), get_args(Knowledge)
MECHANISMS, STAGES = get_args(Mechanism), get_args(Stage)


@dataclass(frozen=True)
class AttackSpec:
    """An attack and where it sits in the survey's taxonomy. `craft(ctx, cfg) -> Poison` does the work."""

    name: str
    goal: Goal
    label: Label
    knowledge: Knowledge
    mechanism: Mechanism
    norm: str                      # budget norm of the perturbation ("linf", "patch", "label")
    victim: str                    # victim training the attack is designed for ("from-scratch", "fine-tune")
    paper: str
    craft: Callable = field(compare=False, repr=False)

    def row(self) -> dict:
        d = asdict(self)
        d.pop("craft")
        return d


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


ATTACKS: dict[str, AttackSpec] = {}
DEFENSES: dict[str, DefenseSpec] = {}


def _check(value: str, allowed: tuple, what: str, name: str) -> None:
    if value not in allowed:
        raise ValueError(f"{name}: {what} {value!r} is not in the taxonomy ({', '.join(allowed)})")


def register_attack(name: str, *, goal: str, label: str, knowledge: str, mechanism: str, norm: str,
                    victim: str, paper: str):
    """Decorator: register `fn` as the crafting function of attack `name` with its taxonomy."""
    _check(goal, GOALS, "goal", name)
    _check(label, LABELS, "label", name)
    _check(knowledge, KNOWLEDGE, "knowledge", name)
    _check(mechanism, MECHANISMS, "mechanism", name)

    def deco(fn):
        if name in ATTACKS:
            raise ValueError(f"attack {name!r} registered twice")
        ATTACKS[name] = AttackSpec(name, goal, label, knowledge, mechanism, norm, victim, paper, fn)
        return fn
    return deco


def register_defense(name: str, *, stage: str, kind: str, needs_clean_data: bool, reports: str, paper: str):
    """Decorator: register `fn` (building the defense from its params) as defense `name`."""
    _check(stage, STAGES, "stage", name)

    def deco(fn):
        if name in DEFENSES:
            raise ValueError(f"defense {name!r} registered twice")
        DEFENSES[name] = DefenseSpec(name, stage, kind, needs_clean_data, reports, paper, fn)
        return fn
    return deco


def get_attack(name: str) -> AttackSpec:
    import tenfold.attacks  # noqa: F401  (registers every attack module)

    if name not in ATTACKS:
        raise KeyError(f"unknown attack {name!r} (registered: {', '.join(sorted(ATTACKS))})")
    return ATTACKS[name]


def get_defense(name: str) -> DefenseSpec:
    import tenfold.defenses  # noqa: F401  (registers every defense module)

    if name not in DEFENSES:
        raise KeyError(f"unknown defense {name!r} (registered: {', '.join(sorted(DEFENSES))})")
    return DEFENSES[name]


def taxonomy_tables() -> dict:
    """The survey's taxonomy as two report tables, generated from the registry."""
    import tenfold.attacks  # noqa: F401
    import tenfold.defenses  # noqa: F401

    acols = ["name", "goal", "label", "knowledge", "mechanism", "norm", "victim", "paper"]
    dcols = ["name", "stage", "kind", "needs_clean_data", "reports", "paper"]
    return {
        "attack_taxonomy": {"title": "Attacks (generated from tenfold.attacks registry)", "columns": acols,
                            "rows": [[a.row()[c] for c in acols] for a in ATTACKS.values()]},
        "defense_taxonomy": {"title": "Defenses (generated from tenfold.defenses registry)", "columns": dcols,
                             "rows": [[d.row()[c] for c in dcols] for d in DEFENSES.values()]},
    }
