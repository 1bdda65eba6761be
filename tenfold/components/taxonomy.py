"""The taxonomy of the dataset-security survey (arXiv:2012.10544): the axes every attack and defense is filed
under. The registries (`components/attacks`, `components/defenses`) check each entry against these."""

from __future__ import annotations

from typing import Literal, get_args

Goal = Literal["targeted", "backdoor", "availability"]
Label = Literal["clean-label", "dirty-label"]
Knowledge = Literal["white-box", "grey-box", "transfer", "from-scratch"]
Mechanism = Literal[
    "trigger patch",
    "feature collision",
    "gradient matching",
    "label flipping",
    "error-maximizing perturbation",
    "error-minimizing perturbation",
]
Stage = Literal[
    "data filtering", "test-time detection", "robust training", "augmentation", "differential privacy", "none"
]

GOALS, LABELS, KNOWLEDGE = get_args(Goal), get_args(Label), get_args(Knowledge)
MECHANISMS, STAGES = get_args(Mechanism), get_args(Stage)


def check(value: str, allowed: tuple, what: str, name: str) -> None:
    if value not in allowed:
        raise ValueError(f"{name}: {what} {value!r} is not in the taxonomy ({', '.join(allowed)})")
