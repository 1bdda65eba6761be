"""What the security stages run: the poisons to craft and the cells of the attack x defense grid."""

from __future__ import annotations

from tenfold.studies.security.benchmark import base_attack
from tenfold.studies.security.params import SecurityParams


def craft_jobs(p: SecurityParams) -> list[tuple[str, str | None]]:
    """(poison label, defense mixing in the crafting loop or None) of every attack to craft: `craft.attacks`, then
    the adaptive gradient-matching variants `gradient_matching+<mixing>` of `craft.adaptive`."""
    jobs: list[tuple[str, str | None]] = [(a, None) for a in p.craft.attacks]
    if "gradient_matching" in p.craft.attacks:
        jobs += [(f"gradient_matching+{m}", m) for m in p.craft.adaptive]
    return jobs


def grid_jobs(p: SecurityParams, poisons: list[dict]) -> list[tuple[dict, str, str | None, str]]:
    """(poison entry, defense, victim kind or None for the registry's, column label) of every cell: each attack
    of `craft.attacks` x `grid_defenses` (the `none` defense once per victim kind), then the `grid_focus` blocks."""
    jobs, seen = [], set()

    def add(e, d):
        kinds = [(v, f"none[{v}]") for v in p.victims] if d == "none" else [(None, d)]
        for kind, label in kinds:
            if (e["path"], label) not in seen:
                seen.add((e["path"], label))
                jobs.append((e, d, kind, label))

    for e in poisons:
        if e["attack"] in p.craft.attacks:
            for d in p.grid_defenses:
                add(e, d)
    for g in p.grid_focus:
        for e in poisons:
            if e["attack"] in g.attacks:
                for d in g.defenses:
                    add(e, d)
    return jobs


def dilution_poisons(p: SecurityParams, poisons: list[dict]) -> list[dict]:
    """The poisons of the dilution check: every gradient-matching one (plain and adaptive), if enabled."""
    if not p.diagnostic.enabled:
        return []
    return [e for e in poisons if base_attack(e["attack"]) == "gradient_matching"]
