"""What the security stages run: the poisons to craft and the cells of the attack x defense grid."""

from __future__ import annotations

from tenfold.components.defenses import get_defense
from tenfold.studies.security.benchmark import base_attack
from tenfold.studies.security.params import SecurityParams


def craft_jobs(p: SecurityParams) -> list[tuple[str, str | None, int]]:
    """(poison label, defense mixing in the crafting loop or None, setups) of every attack to craft:
    `craft.attacks`, then the adaptive gradient-matching variants `gradient_matching+<mixing>` of `craft.adaptive`.
    Gradient matching gets `craft.targets` setups (its success rate is the claim), every other one `craft.trials`."""
    jobs: list[tuple[str, str | None, int]] = [
        (a, None, p.craft.targets if a == "gradient_matching" else p.craft.trials) for a in p.craft.attacks
    ]
    if "gradient_matching" in p.craft.attacks:
        jobs += [(f"gradient_matching+{m}", m, p.craft.trials) for m in p.craft.adaptive]
    return jobs


def grid_jobs(p: SecurityParams, poisons: list[dict]) -> list[tuple[dict, str, str | None, str]]:
    """(poison entry, defense, victim kind or None for the registry's, column label) of every cell: each attack
    of `craft.attacks` x `grid_defenses` (the `none` defense once per victim kind), then the `grid_focus` blocks.
    Setups beyond `craft.trials` (gradient matching's extra targets) get the `none` columns only."""
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
                if d == "none" or e.get("trial", 0) < p.craft.trials:
                    add(e, d)
    for g in p.grid_focus:
        for e in poisons:
            if e["attack"] in g.attacks and e.get("trial", 0) < p.craft.trials:
                for d in g.defenses:
                    add(e, d)
    return jobs


def grid_tasks(p: SecurityParams, poisons: list[dict]) -> list[tuple[dict, list[tuple[str, str | None, str]]]]:
    """`grid_jobs` grouped into tasks: per poison, the columns that start from the victim trained plainly on the
    poisoned data (none, the filters, STRIP) form one task (`benchmark.run_cells` trains that victim once); every
    training-time defense is a task of its own."""
    tasks: list[tuple[dict, list]] = []
    shared: dict[str, list] = {}
    for e, d, kind, label in grid_jobs(p, poisons):
        if get_defense(d).kind == "train":
            tasks.append((e, [(d, kind, label)]))
        else:
            if e["path"] not in shared:
                shared[e["path"]] = []
                tasks.append((e, shared[e["path"]]))
            shared[e["path"]].append((d, kind, label))
    return tasks


def claim_first(tasks: list[tuple[dict, list]]) -> list[tuple[dict, list]]:
    """`grid_tasks` reordered for submission: the plain gradient-matching setups (the claim's victims) first, the
    rest in their order. Results do not depend on it (every cell has its own named seed); on a loaded machine the
    claim's cells finish first."""
    return sorted(tasks, key=lambda t: t[0]["attack"] != "gradient_matching")


def dilution_poisons(p: SecurityParams, poisons: list[dict]) -> list[dict]:
    """The poisons of the dilution check: every gradient-matching one (plain and adaptive) of the first
    `diagnostic.setups` setups, if enabled."""
    if not p.diagnostic.enabled:
        return []
    return [
        e
        for e in poisons
        if base_attack(e["attack"]) == "gradient_matching" and e.get("trial", 0) < p.diagnostic.setups
    ]


def control_setups(p: SecurityParams, poisons: list[dict]) -> list[dict]:
    """The targeted setups the control victim is read on: every plain gradient-matching poison's (if the
    diagnostic is enabled)."""
    if not p.diagnostic.enabled:
        return []
    return [e for e in poisons if e["attack"] == "gradient_matching" and "target_index" in e]
