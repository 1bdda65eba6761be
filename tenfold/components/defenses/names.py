"""Check defense names for params models without importing the defenses (torch, opacus) at validation time."""

from __future__ import annotations


def check_names(names: list[str]) -> list[str]:
    """Validate defense names: an unknown one lists the registered ones."""
    from tenfold.components.defenses import DEFENSES  # lazy: registers every defense module

    bad = [d for d in names if d not in DEFENSES]
    if bad:
        raise ValueError(f"unknown defense(s) {bad}; registered: {sorted(DEFENSES)}")
    return names
