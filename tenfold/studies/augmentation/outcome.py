"""From the measured cells to the augmentation study's claims, table, notes and figure (no training here).

The cells are runs of the security benchmark (`tenfold.studies.security.benchmark.run_cell`) with the poisons of
stage craft_poisons; `summary` is their mean per (attack, defense label) over setups
(`benchmark.summarize`): {(attack, defense): {"success": ..., "clean_acc": ..., "trials": ..., ...}}.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tenfold.core.claims import Claim, claim
from tenfold.core.outcome import Outcome, claim_notes
from tenfold.core.plotting import write_csv
from tenfold.studies.augmentation.params import AugmentationParams
from tenfold.studies.augmentation.plots import acc_vs_success

COLUMNS = ["attack", "defense", "trials", "clean_acc", "success", "epsilon"]


def dp_label(noise: float) -> str:
    """The defense label of DP-SGD at noise multiplier `noise` (one row per `augmentation.dp_noise`)."""
    return f"dpsgd(sigma={noise:g})"


def dp_noise_of(label: str) -> float:
    return float(label.split("=")[1].rstrip(")"))


@dataclass
class Measured:
    """What the augmentation flow measured (and what the crafted poisons were made on)."""

    cells: list[dict]
    summary: dict[tuple[str, str], dict]  # `benchmark.summarize(cells)`
    labels: list[str]  # defense labels in run order (`plan.defense_plan`)
    clean_acc: float  # of the clean network (craft_poisons)
    dataset: str
    n_train: int  # training images
    trials: int  # setups per attack (security.craft.trials)


def _get(summary: dict, attack: str, defense: str, key: str):
    return summary.get((attack, defense), {}).get(key)


def claims(p: AugmentationParams, summary: dict, labels: list[str]) -> tuple[list[Claim], list[str]]:
    """cutmix_backdoor_cut (BadNets) and dpsgd_cost, with the notes they call for; every `holds` is computed from
    the measured means."""

    def m(attack, defense, key):
        return _get(summary, attack, defense, key)

    notes = []
    none_asr, none_acc = m("badnets", "none", "success"), m("badnets", "none", "clean_acc")
    cm_asr, cm_acc = m("badnets", "cutmix", "success"), m("badnets", "cutmix", "clean_acc")
    cut = drop = None
    if None not in (none_asr, cm_asr, none_acc, cm_acc) and none_asr > 0:
        cut, drop = 1 - cm_asr / none_asr, none_acc - cm_acc
    mu_asr, mu_acc = m("badnets", "mixup", "success"), m("badnets", "mixup", "clean_acc")
    if None not in (none_asr, mu_asr, mu_acc) and none_asr > 0:
        notes.append(
            f"mixup vs BadNets: success {none_asr:.3f} -> {mu_asr:.3f} (cut {1 - mu_asr / none_asr:.2f}), "
            f"clean accuracy {none_acc:.3f} -> {mu_acc:.3f}."
        )
    c1 = claim(
        "cutmix_backdoor_cut",
        f"CutMix cuts BadNets backdoor success by at least {p.backdoor_cut_target:.0%} while clean accuracy "
        f"drops by at most {p.max_acc_drop * 100:g} point(s) (measured: relative cut; holds needs both)",
        "CutMix greatly mitigates the backdoor while raising validation accuracy by 9% (CIFAR-10)",
        cut,
        p.backdoor_cut_target,
        ">=",
        holds=None if cut is None else (cut >= p.backdoor_cut_target and drop <= p.max_acc_drop),
        note="" if drop is None else f"clean-accuracy drop {drop:+.4f}",
    )
    dps = [lab for lab in labels if lab.startswith("dpsgd(")]
    defending = [
        d
        for d in dps
        if cm_asr is not None and m("badnets", d, "success") is not None and m("badnets", d, "success") <= cm_asr
    ]
    chosen = min(defending, key=dp_noise_of) if defending else None
    cost = None
    if chosen and None not in (none_acc, cm_acc):
        cost = (none_acc - m("badnets", chosen, "clean_acc")) - (none_acc - cm_acc)
        notes.append(f"DP-SGD level matching CutMix's backdoor defense: {chosen}.")
    elif dps:
        notes.append(
            "No DP-SGD noise level defended the backdoor as well as CutMix; `dpsgd_cost` is not measurable "
            "at these noise levels (holds = false)."
        )
    c2 = claim(
        "dpsgd_cost",
        "DP-SGD at the smallest noise level that defends BadNets as well as CutMix costs more clean accuracy "
        "than CutMix (measured: its accuracy drop minus CutMix's)",
        "DP-SGD defends only at a large accuracy cost",
        cost,
        0.0,
        ">",
    )
    return [c1, c2], notes


def table_rows(summary: dict) -> list[list]:
    """One row per (attack, defense): trials, mean clean accuracy, success and DP epsilon (rounded)."""
    return [
        [
            a,
            d,
            s["trials"],
            round(s["clean_acc"], 4),
            None if s.get("success") is None else round(s["success"], 4),
            None if s.get("defense.epsilon") is None else round(s["defense.epsilon"], 3),
        ]
        for (a, d), s in summary.items()
    ]


def build(p: AugmentationParams, m: Measured, accept_min_clean_acc: float) -> Outcome:
    """`accept_min_clean_acc` (from section `security`): the clean network's check, which moves the model alias."""
    found, extra = claims(p, m.summary, m.labels)
    notes = (
        claim_notes(found)
        + extra
        + [
            f"CPU profile: {m.dataset} ({m.n_train} training images), small GroupNorm ConvNet, "
            f"{m.trials} setups per attack; the paper uses CIFAR-10 with ResNet-18.",
            "`batch_clip_noise` is the lab's batch-level clip-and-noise, NOT differentially private; `dpsgd(...)` rows "
            "are opacus DP-SGD (per-example clipping, RDP epsilon in the table).",
            "`gradient_matching+cutmix` is the adaptive attack: CutMix inside the crafting loss (lab --pmix).",
        ]
    )
    s = m.summary
    headline = {"clean_acc": m.clean_acc, **{c.id: c.measured for c in found}}
    for d in ("none", "cutmix", "mixup"):
        headline[f"badnets_{d}_success"] = _get(s, "badnets", d, "success")
        headline[f"badnets_{d}_acc"] = _get(s, "badnets", d, "clean_acc")
    return Outcome(
        claims=found,
        headline=headline,
        notes=notes,
        description=(
            f"Defenses {', '.join(m.labels)} against {', '.join(p.attacks)}, poisons reused from "
            "the craft_poisons stage."
        ),
        tables={
            "defenses": {
                "title": "Clean accuracy and attack success per defense (mean over setups)",
                "columns": COLUMNS,
                "rows": table_rows(s),
            }
        },
        details={"cells": m.cells, "clean_acc": m.clean_acc},
        passed=m.clean_acc >= accept_min_clean_acc,
    )


def write_figures(
    out: Outcome, p: AugmentationParams, m: Measured, plot_dir: Path, rel: str = "plots/augmentation"
) -> None:
    """The table as CSV (for `dvc plots`) and the accuracy-vs-success panels; sets `out.figures`."""
    write_csv(Path(plot_dir) / "acc_vs_success.csv", COLUMNS, out.tables["defenses"]["rows"])
    points = {
        a: {
            d: (_get(m.summary, a, d, "success"), _get(m.summary, a, d, "clean_acc"))
            for d in m.labels
            if _get(m.summary, a, d, "success") is not None
        }
        for a in p.attacks
    }
    acc_vs_success(Path(plot_dir) / "acc_vs_success.png", points, "clean accuracy vs attack success per defense")
    out.figures = [
        {"path": f"{rel}/acc_vs_success.png", "caption": "Validation accuracy against attack success for each defense"}
    ]
