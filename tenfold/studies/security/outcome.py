"""From the measured benchmark cells to the security study's claim, tables, notes and figures (no training here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tenfold.core.claims import claim
from tenfold.core.outcome import Outcome, claim_notes
from tenfold.core.plotting import write_csv
from tenfold.studies.security.benchmark import summarize
from tenfold.studies.security.params import SecurityParams
from tenfold.studies.security.plots import heatmap
from tenfold.studies.security.taxonomy import taxonomy_tables

GRID_COLUMNS = [
    "attack",
    "defense",
    "victim",
    "trials",
    "clean_acc",
    "success",
    "removed",
    "filter_precision",
    "filter_recall",
    "strip_detection",
    "strip_false_alarms",
    "success_after_detection",
]
DILUTION_COLUMNS = [
    "poison",
    "setup",
    "start",
    "poisons_only",
    "bases_only",
    "gain",
    "poisoned_set",
    "clean_set",
    "set_gain",
]


@dataclass
class Measured:
    """What the security flow measured (and what the crafted poisons were made on)."""

    cells: list[dict]  # one per (poison, defense column), in grid order (see `plan.grid_jobs`)
    clean_acc: float  # of the clean network (craft_poisons)
    dataset: str
    source: str  # where the data came from
    n_train: int  # training images
    dilution: list[dict] = field(default_factory=list)  # `benchmark.dilution_diagnostic` per gradient-matching poison

    @property
    def attacks(self) -> list[str]:
        return list(dict.fromkeys(c["attack"] for c in self.cells))

    @property
    def columns(self) -> list[str]:
        return list(dict.fromkeys(c["defense"] for c in self.cells))


def grid_rows(summary: dict, cells: list[dict]) -> list[list]:
    """The grid table: one row per (attack, defense column), means over setups rounded to 4 places."""
    rows = []
    for (a, d), m in summary.items():
        victim = next(c["victim"] for c in cells if c["attack"] == a and c["defense"] == d)
        rows.append(
            [a, d, victim, m["trials"], *[None if m.get(k) is None else round(m[k], 4) for k in GRID_COLUMNS[4:]]]
        )
    return rows


def _mean(rows: list[dict], key: str) -> float:
    return sum(r[key] for r in rows) / len(rows)


def build(p: SecurityParams, m: Measured) -> Outcome:
    summary = summarize(m.cells)
    gm = summary.get(("gradient_matching", "none[from-scratch]"), {}).get("success")
    gm_ft = summary.get(("gradient_matching", "none[fine-tune]"), {}).get("success")
    claims = [
        claim(
            "gradient_matching_success",
            "with no defense, gradient matching (Witches' Brew) makes the victim, retrained from "
            "scratch, classify the target as the adversarial class (fraction of targets)",
            "45% from scratch, CIFAR-10 ResNet-18, 1% budget (poisoning benchmark)",
            gm,
            p.gm_success_target,
            ">=",
        )
    ]
    notes = claim_notes(claims) + [
        f"CPU profile: {m.dataset} ({m.n_train} training images, source {m.source}), "
        f"a small GroupNorm ConvNet victim instead of ResNet-18 on CIFAR-10, {p.craft.trials} setups per attack "
        "instead of 100; success rates are therefore coarse (steps of 1/trials).",
        "Victims: under no defense every attack is measured twice, `none[from-scratch]` (a new network, new "
        "seed, same recipe as the clean network) and `none[fine-tune]` (the clean pre-trained network's last "
        "layer retrained on the poisoned set). Under the other defenses the registry's victim is used: "
        "fine-tuning for the transfer attacks (feature collision, hidden trigger), from scratch for the rest.",
        f"Gradient matching, fine-tuned victim: {'n/a' if gm_ft is None else f'{gm_ft:.3f}'} of targets.",
        "Label flipping is an availability attack: its `success` is the drop in clean accuracy relative to the "
        "clean network.",
    ]
    tables = taxonomy_tables()
    tables["grid"] = {
        "title": "Attack x defense grid (mean over setups)",
        "columns": GRID_COLUMNS,
        "rows": grid_rows(summary, m.cells),
    }
    headline = {"clean_acc": m.clean_acc, "gradient_matching_success": gm, "gradient_matching_finetune_success": gm_ft}
    for a in p.craft.attacks:  # success without a defense, the grid's first column
        headline[f"{a}_success"] = summary.get((a, "none[from-scratch]"), {}).get("success")
    diag = m.dilution
    if diag:
        tables["dilution"] = {
            "title": (
                f"Gradient matching, dilution check: log-probability of the adversarial class on the target "
                f"after {p.diagnostic.steps} full-batch SGD steps on the poisons alone vs their unperturbed "
                f"bases, and after {p.diagnostic.set_epochs} epochs on the whole poisoned vs clean set "
                f"(from the clean network; gains in nats)"
            ),
            "columns": DILUTION_COLUMNS,
            "rows": [[d["attack"], d["trial_seed"], *[round(d[k], 3) for k in DILUTION_COLUMNS[2:]]] for d in diag],
        }
        gain, set_gain, clean_lp = (_mean(diag, k) for k in ("gain", "set_gain", "clean_set"))
        notes.append(
            f"Dilution check (table `dilution`): alone, the crafted poisons raise the target's log-probability of "
            f"the adversarial class by {gain:.2f} nats more than their unperturbed bases, so the gradient "
            f"matching step works; inside the whole training set ({m.n_train} images, "
            f"{diag[0]['n_poison']} poisons) the gain falls to {set_gain:.2f} nats, while the target's "
            f"log-probability of the adversarial class stays near {clean_lp:.1f} (a flip needs about -0.7). "
            "The attack is lost to dilution, not to a wrong gradient."
        )
        headline.update(dilution_gain=gain, dilution_set_gain=set_gain)
    return Outcome(
        claims=claims,
        headline=headline,
        notes=notes,
        tables=tables,
        description=(
            f"Every registered attack ({', '.join(m.attacks)}) against the defenses "
            f"({', '.join(m.columns)}) under one protocol: {p.craft.trials} seeded setups, "
            f"eps {p.budget.eps}/255, {p.budget.poison_fraction:.1%} poisons, "
            f"{p.budget.patch_size}px trigger."
        ),
        details={"cells": m.cells, "dilution": diag, "clean_acc": m.clean_acc},
        passed=m.clean_acc >= p.accept_min_clean_acc,
    )


def write_figures(out: Outcome, p: SecurityParams, m: Measured, plot_dir: Path, rel: str = "plots/security") -> None:
    """The grid as CSV (for `dvc plots`) and the heat maps of success and clean accuracy; sets `out.figures`."""
    summary = summarize(m.cells)
    write_csv(Path(plot_dir) / "grid.csv", GRID_COLUMNS, out.tables["grid"]["rows"])
    heatmap(
        Path(plot_dir) / "success_heatmap.png",
        m.attacks,
        m.columns,
        {k: s.get("success") for k, s in summary.items()},
        f"attack success ({m.dataset}, eps {p.budget.eps}/255, {p.budget.poison_fraction:.0%})",
    )
    heatmap(
        Path(plot_dir) / "accuracy_heatmap.png",
        m.attacks,
        m.columns,
        {k: s.get("clean_acc") for k, s in summary.items()},
        "clean validation accuracy",
    )
    out.figures = [
        {"path": f"{rel}/success_heatmap.png", "caption": "Attack success per cell"},
        {"path": f"{rel}/accuracy_heatmap.png", "caption": "Clean accuracy per cell"},
    ]
