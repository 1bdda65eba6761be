"""Defenses against poisoning and backdoors, one module per family, registered with their stage (see `registry`)."""

from tenfold.components.defenses import augment, dp, filtering, strip  # noqa: F401  (registration)
from tenfold.components.defenses.none import build_none  # noqa: F401
from tenfold.components.defenses.registry import DEFENSES, DefenseSpec, register_defense  # noqa: F401


def get_defense(name: str) -> DefenseSpec:
    if name not in DEFENSES:
        raise KeyError(f"unknown defense {name!r} (registered: {', '.join(sorted(DEFENSES))})")
    return DEFENSES[name]
