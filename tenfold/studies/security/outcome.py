"""From the measured benchmark cells to the security study's claim, tables, notes and figures (no training here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tenfold.core.claims import claim
from tenfold.core.outcome import Outcome, claim_notes
from tenfold.core.plotting import write_csv
from tenfold.studies.security.benchmark import summarize
from tenfold.studies.security.params import SecurityParams
from tenfold.studies.security.plots import epochs_curve, heatmap
from tenfold.studies.security.taxonomy import taxonomy_tables

GRID_COLUMNS = [
    "attack",
    "defense",
    "victim",
    "trials",
    "failed",
    "clean_acc",
    "success",
    "success_lo",
    "success_hi",
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
TARGET_COLUMNS = [
    "setup",
    "target_true",
    "adv_class",
    "clean_net_adv_logp",
    "clean_net_says_adv",
    "matching_start",
    "matching_final",
    "control_adv_logp",
    "control_success",
    "victim_acc",
    "victim_adv_logp",
    "success",
]
GM, GM_COL = "gradient_matching", "none[from-scratch]"


@dataclass
class Measured:
    """What the security flow measured (and what the crafted poisons were made on)."""

    cells: list[dict]  # one per (poison, defense column), in grid order (see `plan.grid_jobs`)
    clean_acc: float  # of the clean network (craft_poisons)
    dataset: str
    source: str  # where the data came from
    n_train: int  # training images
    dilution: list[dict] = field(default_factory=list)  # `benchmark.dilution_diagnostic` per gradient-matching poison
    poisons: list[dict] = field(default_factory=list)  # the manifest's entries (crafting info per poison)
    control: list[dict] = field(default_factory=list)  # `benchmark.control_targets`: clean-data victim per target

    @property
    def attacks(self) -> list[str]:
        return list(dict.fromkeys(c["attack"] for c in self.cells))

    @property
    def columns(self) -> list[str]:
        return list(dict.fromkeys(c["defense"] for c in self.cells))


def grid_rows(summary: dict, cells: list[dict]) -> list[list]:
    """The grid table: one row per (attack, defense column), means over the setups whose victim trained (rounded to
    4 places), the success rate's 95% Wilson interval and the number of failed victims."""
    rows = []
    for (a, d), m in summary.items():
        victim = next(c["victim"] for c in cells if c["attack"] == a and c["defense"] == d)
        rows.append(
            [
                a,
                d,
                victim,
                m["trials"],
                m.get("failed", 0),
                *[None if m.get(k) is None else round(m[k], 4) for k in GRID_COLUMNS[5:]],
            ]
        )
    return rows


def target_rows(m: Measured) -> list[list]:
    """One row per gradient-matching target: what the clean network says, the crafting loss, the victim's answer."""
    crafted = {e.get("setup_seed"): e for e in m.poisons if e.get("attack") == GM}
    control = {c["setup_seed"]: c for c in m.control}
    rows = []
    for c in (c for c in m.cells if c["attack"] == GM and c["defense"] == GM_COL):
        e, k = crafted.get(c["trial_seed"], {}), control.get(c["trial_seed"], {})
        rows.append(
            [
                c["trial_seed"],
                e.get("target_true"),
                e.get("adv_class"),
                _r(e.get("clean_adv_logp")),
                e.get("clean_pred_adv"),
                _r(e.get("start_loss")),
                _r(e.get("matching_loss")),
                _r(k.get("control_adv_logp")),
                k.get("control_success"),
                _r(c["clean_acc"]),
                _r(c.get("target_adv_logp")),
                None if not c.get("trained", True) else c["success"],
            ]
        )
    return rows


def control_gain(m: Measured) -> float | None:
    """Mean over the trained from-scratch victims of (log p_adv of the target, poisoned victim) - (same, control
    victim): what the poisons move the target in nats after retraining from scratch."""
    control = {c["setup_seed"]: c["control_adv_logp"] for c in m.control}
    gains = [
        c["target_adv_logp"] - control[c["trial_seed"]]
        for c in m.cells
        if c["attack"] == GM
        and c["defense"] == GM_COL
        and c.get("trained", True)
        and c["trial_seed"] in control
        and c.get("target_adv_logp") is not None
    ]
    return sum(gains) / len(gains) if gains else None


def attributable(m: Measured) -> tuple[int, int, int] | None:
    """(successes the control victim does not already show, successes, trained victims) of gradient matching from
    scratch, or None without a control."""
    if not m.control:
        return None
    control = {c["setup_seed"]: c["control_success"] for c in m.control}
    cells = [
        c
        for c in m.cells
        if c["attack"] == GM and c["defense"] == GM_COL and c.get("trained", True) and c["trial_seed"] in control
    ]
    hits = [c for c in cells if c["success"]]
    return sum(1 for c in hits if not control[c["trial_seed"]]), len(hits), len(cells)


def epoch_rows(m: Measured) -> list[list]:
    """Gradient matching, success vs victim epochs: per epoch of the from-scratch victims (trained ones), the
    fraction of targets classified as their adversarial class and the mean log-probability of that class."""
    curves = [
        c
        for c in m.cells
        if c["attack"] == GM and c["defense"] == GM_COL and c.get("trained", True) and c.get("success_by_epoch")
    ]
    if not curves:
        return []
    n = min(len(c["success_by_epoch"]) for c in curves)
    return [
        [
            e + 1,
            round(sum(c["success_by_epoch"][e] for c in curves) / len(curves), 4),
            round(sum(c["adv_logp_by_epoch"][e] for c in curves) / len(curves), 4),
            len(curves),
        ]
        for e in range(n)
    ]


def _r(v, nd=3):
    return None if v is None else round(float(v), nd)


def _mean(rows: list[dict], key: str) -> float:
    return sum(r[key] for r in rows) / len(rows)


def build(p: SecurityParams, m: Measured) -> Outcome:
    summary = summarize(m.cells)
    g = summary.get((GM, GM_COL), {})
    gm, gm_ft = g.get("success"), summary.get((GM, "none[fine-tune]"), {}).get("success")
    ci = (
        ""
        if g.get("success_lo") is None
        else (
            f"{g.get('successes')} of {g.get('n')} targets, 95% Wilson interval "
            f"[{g['success_lo']:.2f}, {g['success_hi']:.2f}]"
        )
    )
    failed = g.get("failed", 0)
    claims = [
        claim(
            "gradient_matching_success",
            "with no defense, gradient matching (Witches' Brew) makes the victim, retrained from "
            "scratch, classify the target as the adversarial class (fraction of targets whose victim trained)",
            "45% from scratch, CIFAR-10 ResNet-18, 1% budget, eps 16/255 (poisoning benchmark)",
            gm,
            p.gm_success_target,
            ">=",
            note=ci + (f"; {failed} victim(s) failed training, excluded" if failed else ""),
        )
    ]
    att = attributable(m)
    notes = claim_notes(claims) + [
        f"Data: {m.dataset} ({m.n_train} training images, source {m.source}). Victim: {p.victim.arch} "
        f"(width {p.victim.width}, blocks {p.victim.blocks}) trained from scratch for {p.victim.epochs} epochs "
        f"(SGD, warm-up, {p.victim.schedule} decay, crop + flip) instead of ResNet-18 for 40 epochs on 50,000 images; "
        f"{p.craft.targets} gradient-matching targets, {p.craft.trials} setup(s) per other attack and per grid "
        "column (so their success rates are coarse).",
        f"Gradient matching, from scratch: {ci or 'n/a'}. A victim below {p.victim.min_clean_acc} clean accuracy "
        "counts as failed training and enters no rate.",
        f"Gradient matching, fine-tuned victim: {'n/a' if gm_ft is None else f'{gm_ft:.3f}'} of targets.",
        "Victims: under no defense every attack is measured twice, `none[from-scratch]` (a new network, new "
        "seed, same recipe as the clean network) and `none[fine-tune]` (the clean pre-trained network's last "
        "layer retrained on the poisoned set). Under the other defenses the registry's victim is used: "
        "fine-tuning for the transfer attacks (feature collision, hidden trigger), from scratch for the rest.",
        "Label flipping is an availability attack: its `success` is the drop in clean accuracy relative to the "
        "clean network.",
    ]
    if att is not None:
        ctrl = sum(c["control_success"] for c in m.control)
        notes.append(
            f"Control: a victim with the same seed and recipe trained on the clean set already classifies "
            f"{int(ctrl)} of {len(m.control)} targets as their adversarial class (accuracy "
            f"{m.control[0]['control_acc']:.3f}); {att[0]} of the {att[1]} successes are not in the "
            f"control, i.e. {att[0]}/{att[2]} targets flipped by the poisons (table `targets`). On average "
            f"the poisons move the target's log-probability of the adversarial class by "
            f"{control_gain(m):+.2f} nats over the control victim's."
        )
    tables = taxonomy_tables()
    tables["grid"] = {
        "title": "Attack x defense grid (mean over setups whose victim trained; 95% Wilson interval "
        "of the success rate)",
        "columns": GRID_COLUMNS,
        "rows": grid_rows(summary, m.cells),
    }
    if any(c["attack"] == GM and c["defense"] == GM_COL for c in m.cells):
        tables["targets"] = {
            "title": "Gradient matching per target: the clean network's log-probability of the "
            "adversarial class, the matching loss before/after crafting, the from-scratch "
            "victim's answer",
            "columns": TARGET_COLUMNS,
            "rows": target_rows(m),
        }
    by_epoch = epoch_rows(m)
    if by_epoch:
        tables["gm_by_epoch"] = {
            "title": "Gradient matching, success vs victim epochs: fraction of targets classified "
            "as the adversarial class after each epoch of the from-scratch victims, and "
            "the mean log-probability of that class",
            "columns": ["epoch", "success", "mean_adv_logp", "targets"],
            "rows": by_epoch,
        }
    headline = {
        "clean_acc": m.clean_acc,
        "gradient_matching_success": gm,
        "gradient_matching_success_lo": g.get("success_lo"),
        "gradient_matching_success_hi": g.get("success_hi"),
        "gradient_matching_targets": g.get("n"),
        "gradient_matching_failed_victims": failed,
        "gradient_matching_finetune_success": gm_ft,
        "gradient_matching_control_success": (
            sum(c["control_success"] for c in m.control) / len(m.control) if m.control else None
        ),
        "gradient_matching_attributable": att[0] / att[2] if att and att[2] else None,
        "gradient_matching_logp_gain": control_gain(m),
    }
    for a in p.craft.attacks:  # success without a defense, the grid's first column
        if a != GM:
            headline[f"{a}_success"] = summary.get((a, GM_COL), {}).get("success")
    diag = m.dilution
    if diag:
        tables["dilution"] = {
            "title": (
                f"Gradient matching, dilution check: log-probability of the adversarial class on the target "
                f"after {p.diagnostic.steps} full-batch SGD steps on the poisons alone vs their unperturbed "
                f"bases, and after {p.diagnostic.set_epochs} epoch(s) on the whole poisoned vs clean set "
                f"(from the clean network; gains in nats)"
            ),
            "columns": DILUTION_COLUMNS,
            "rows": [[d["attack"], d["trial_seed"], *[round(d[k], 3) for k in DILUTION_COLUMNS[2:]]] for d in diag],
        }
        gain, set_gain, clean_lp = (_mean(diag, k) for k in ("gain", "set_gain", "clean_set"))
        notes.append(
            f"Dilution check (table `dilution`): alone, the crafted poisons raise the target's log-probability of "
            f"the adversarial class by {gain:.2f} nats more than their unperturbed bases; inside the whole training "
            f"set ({m.n_train} images, {diag[0]['n_poison']} poisons) the gain is {set_gain:.2f} nats "
            f"({p.diagnostic.set_epochs} epoch(s) of continued training), where the target's log-probability of the "
            f"adversarial class averages {clean_lp:.1f} on the clean set (a flip needs it near the largest class's, "
            "about -0.7 or above)."
        )
        headline.update(dilution_gain=gain, dilution_set_gain=set_gain)
    return Outcome(
        claims=claims,
        headline=headline,
        notes=notes,
        tables=tables,
        description=(
            f"Every registered attack ({', '.join(m.attacks)}) against the defenses "
            f"({', '.join(m.columns)}) under one protocol on {m.dataset}: seeded setups "
            f"({p.craft.targets} gradient-matching targets, {p.craft.trials} per other attack), "
            f"eps {p.budget.eps:g}/255, {p.budget.poison_fraction:.1%} poisons, "
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
        f"attack success ({m.dataset}, eps {p.budget.eps:g}/255, {p.budget.poison_fraction:.0%})",
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
    rows = out.tables.get("gm_by_epoch", {}).get("rows")
    if rows:
        epochs_curve(Path(plot_dir) / "gm_by_epoch.png", rows, p.gm_success_target)
        out.figures.append(
            {
                "path": f"{rel}/gm_by_epoch.png",
                "caption": "Gradient matching: success and the target's log p(adversarial) vs the "
                "victim's training epochs",
            }
        )
