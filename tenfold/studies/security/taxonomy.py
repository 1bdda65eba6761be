"""The survey's taxonomy as report tables, generated from the attack and defense registries."""

from __future__ import annotations

from tenfold.components.attacks import ATTACKS
from tenfold.components.defenses import DEFENSES


def taxonomy_tables() -> dict:
    """The survey's taxonomy as two report tables, generated from the registry."""
    acols = ["name", "goal", "label", "knowledge", "mechanism", "norm", "victim", "paper"]
    dcols = ["name", "stage", "kind", "needs_clean_data", "reports", "paper"]
    return {
        "attack_taxonomy": {
            "title": "Attacks (generated from tenfold.components.attacks registry)",
            "columns": acols,
            "rows": [[a.row()[c] for c in acols] for a in ATTACKS.values()],
        },
        "defense_taxonomy": {
            "title": "Defenses (generated from tenfold.components.defenses registry)",
            "columns": dcols,
            "rows": [[d.row()[c] for c in dcols] for d in DEFENSES.values()],
        },
    }
