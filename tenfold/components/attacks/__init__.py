"""Poisoning and backdoor attacks, one module per family, registered with their taxonomy (see `registry`)."""

from tenfold.components.attacks import backdoors, feature_collision, gradient_matching, label_flip  # noqa: F401  (registration)
from tenfold.components.attacks.registry import ATTACKS, AttackSpec, register_attack  # noqa: F401


def get_attack(name: str) -> AttackSpec:
    if name not in ATTACKS:
        raise KeyError(f"unknown attack {name!r} (registered: {', '.join(sorted(ATTACKS))})")
    return ATTACKS[name]
