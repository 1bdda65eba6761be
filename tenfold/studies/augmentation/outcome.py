"""From the measured cells to the augmentation study's claims, table, notes and figure (no training here).

The cells are runs of the security benchmark (`tenfold.studies.security.benchmark.run_cells`) with the poisons of
stage craft_poisons; `summary` is their summary per (attack, defense label) over setups
(`benchmark.summarize`): {(attack, defense): {"success": ..., "clean_acc": ..., "trials": ..., "success_lo": ...,
"success_hi": ..., "clean_acc_lo": ..., ...}}.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tenfold.components.attacks.metrics import control_rate
from tenfold.core.claims import Claim, claim
from tenfold.core.outcome import Outcome, claim_notes
from tenfold.core.plotting import write_csv
from tenfold.studies.augmentation.params import AugmentationParams
from tenfold.studies.augmentation.plots import acc_vs_success

COLUMNS = [
    "attack",
    "defense",
    "trials",
    "failed",
    "clean_acc",
    "clean_acc_lo",
    "clean_acc_hi",
    "success",
    "success_lo",
    "success_hi",
    "epsilon",
]
TOL = 1e-9  # float slack of the accuracy-drop comparison: 0.95 - 0.94 is a drop of exactly 1 point


CURVE_DEFENSES = ("none", "cutmix")  # the training-length curve: the claim's two rows


def curve_label(defense: str, epochs: int) -> str:
    """The label of a training-length curve row: `defense` on victims trained `epochs` epochs."""
    return f"{defense}@{epochs}ep"


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
    trials: int  # setups per backdoor attack (augmentation.setups)
    targeted_trials: int = 1  # setups per targeted attack (augmentation.targeted_setups)
    victim_epochs: int | None = None  # of the victims trained here (augmentation.victim_epochs or security's)
    controls: list[dict] | None = None  # `benchmark.backdoor_control` of the claims' backdoor, per setup


def _get(summary: dict, attack: str, defense: str, key: str):
    return summary.get((attack, defense), {}).get(key)


def _ci(summary: dict, attack: str, defense: str, key: str) -> str:
    lo, hi = _get(summary, attack, defense, f"{key}_lo"), _get(summary, attack, defense, f"{key}_hi")
    return "" if lo is None or hi is None else f" [{lo:.3f}, {hi:.3f}]"


def claims(
    p: AugmentationParams, summary: dict, labels: list[str], control: dict | None = None, main_epochs: int | None = None
) -> tuple[list[Claim], list[str]]:
    """cutmix_backdoor_cut and dpsgd_cost on `p.backdoor`, with the notes they call for; every `holds` is computed
    from the measured means. The accuracy drop is compared with a 1e-9 slack, so a drop of exactly the allowed
    points holds despite float rounding. `control` (`metrics.control_rate`): the share of the triggered inputs that
    the clean network already sends to the adversarial class; neither claim is judged unless the undefended
    victim's success is above it (the lower end of its 95% interval above the upper end of the control's): a
    defense is not credited with cutting a backdoor that never implanted. Without a control nothing is judged.
    `main_epochs`: the victims' length in the main rows; the cut must also hold at every longer length of
    `p.epoch_curve` (a cut that vanishes with training delays the backdoor, it does not remove it)."""
    bd = p.backdoor

    def m(defense, key):
        return _get(summary, bd, defense, key)

    notes = []
    none_asr, none_acc = m("none", "success"), m("none", "clean_acc")
    cm_asr, cm_acc = m("cutmix", "success"), m("cutmix", "clean_acc")
    cut = drop = None
    none_lo = m("none", "success_lo")
    implanted = control is not None and none_lo is not None and none_lo > control["success_hi"]
    ctl = (
        "no control measured"
        if control is None
        else (
            f"the clean network sends {control['success']:.3f} [{control['success_lo']:.3f}, "
            f"{control['success_hi']:.3f}] of the triggered inputs there"
        )
    )
    if none_asr is not None:
        notes.append(
            (f"The {bd} backdoor implanted" if implanted else f"Not tested: the {bd} backdoor did not implant")
            + f": success without defense {none_asr:.3f}{_ci(summary, bd, 'none', 'success')}, while {ctl}"
            + (
                "."
                if implanted
                else "; neither claim is judged (a defense is not credited with cutting a backdoor "
                "the undefended victim never learned); the measured values are shown."
            )
        )
    if None not in (none_asr, cm_asr, none_acc, cm_acc) and none_asr > 0:
        cut, drop = 1 - cm_asr / none_asr, none_acc - cm_acc
    if cut is not None:
        notes.append(
            f"{bd} success without defense {none_asr:.3f}{_ci(summary, bd, 'none', 'success')}, with CutMix "
            f"{cm_asr:.3f}{_ci(summary, bd, 'cutmix', 'success')}; clean accuracy {none_acc:.3f}"
            f"{_ci(summary, bd, 'none', 'clean_acc')} -> {cm_acc:.3f}{_ci(summary, bd, 'cutmix', 'clean_acc')}"
            " (95% Wilson intervals over the pooled triggered / test images)."
        )
    mu_asr, mu_acc = m("mixup", "success"), m("mixup", "clean_acc")
    if None not in (none_asr, mu_asr, mu_acc, none_acc) and none_asr > 0:
        notes.append(
            f"mixup vs {bd}: success {none_asr:.3f} -> {mu_asr:.3f} (cut {1 - mu_asr / none_asr:.2f}), "
            f"clean accuracy {none_acc:.3f} -> {mu_acc:.3f}."
        )
    lost = _curve(p, summary, main_epochs, notes)
    untested = "" if implanted or none_asr is None else "not tested: the backdoor did not implant beyond the control"
    c1 = claim(
        "cutmix_backdoor_cut",
        f"CutMix cuts the backdoor's ({bd}) success by at least {p.backdoor_cut_target:.0%} while clean "
        f"accuracy drops by at most {p.max_acc_drop * 100:g} point(s) (measured: relative cut; holds needs "
        "both)",
        "CutMix greatly mitigates the backdoor while raising validation accuracy by 9% (CIFAR-10)",
        cut,
        p.backdoor_cut_target,
        ">=",
        holds=None
        if cut is None
        else (implanted and cut >= p.backdoor_cut_target and drop <= p.max_acc_drop + TOL and not lost),
        note=("" if drop is None else f"clean-accuracy drop {drop:+.4f}")
        + (f"; gone at longer training: {lost}" if lost else "")
        + ("" if untested == "" else f"; {untested}"),
    )
    dps = [lab for lab in labels if lab.startswith("dpsgd(")]
    defending = [d for d in dps if cm_asr is not None and m(d, "success") is not None and m(d, "success") <= cm_asr]
    chosen = min(defending, key=dp_noise_of) if defending else None
    cost = None
    if chosen and None not in (none_acc, cm_acc, m(chosen, "clean_acc")):
        cost = (none_acc - m(chosen, "clean_acc")) - (none_acc - cm_acc)
        notes.append(
            f"DP-SGD level matching CutMix's backdoor defense: {chosen} (success {m(chosen, 'success'):.3f}, "
            f"clean accuracy {m(chosen, 'clean_acc'):.3f})."
        )
    elif dps:
        failed = [d for d in dps if m(d, "trials") and m(d, "failed") == m(d, "trials")]
        trained = [d for d in dps if d not in failed]
        notes.append(
            (
                f"DP-SGD failed to train at {', '.join(failed)}: every victim stayed below the victims' minimum "
                "clean accuracy (the table's `failed` column), so it enters no mean"
                + (f"; at {', '.join(trained)} it did not defend the backdoor as well as CutMix" if trained else "")
                if failed
                else "No DP-SGD noise level defended the backdoor as well as CutMix"
            )
            + "; `dpsgd_cost` is not measurable at these noise levels (holds = false)."
        )
    c2 = claim(
        "dpsgd_cost",
        f"DP-SGD at the smallest noise level that defends {bd} as well as CutMix costs more clean accuracy "
        "than CutMix (measured: its accuracy drop minus CutMix's)",
        "DP-SGD defends only at a large accuracy cost",
        cost,
        0.0,
        ">",
        holds=None if cost is None else (implanted and cost > 0),
        note=untested,
    )
    return [c1, c2], notes


def _curve(p: AugmentationParams, summary: dict, main_epochs: int | None, notes: list[str]) -> str:
    """The training-length curve of the claim's backdoor (undefended vs CutMix at each `p.epoch_curve` length and
    the main one): appends its note; returns the longer lengths at which the cut falls below the target ('' if
    none)."""
    bd, rows, lost = p.backdoor, [], []
    for ep in sorted({*p.epoch_curve, *([main_epochs] if main_epochs else [])}):
        main = ep == main_epochs
        n, c = ("none", "cutmix") if main else (curve_label("none", ep), curve_label("cutmix", ep))
        ns, cs = _get(summary, bd, n, "success"), _get(summary, bd, c, "success")
        na, ca = _get(summary, bd, n, "clean_acc"), _get(summary, bd, c, "clean_acc")
        if None in (ns, cs, na, ca):
            continue
        cut = 1 - cs / ns if ns > 0 else None
        rows.append(
            f"{ep}{' (main)' if main else ''}: success {ns:.3f} -> {cs:.3f}"
            + ("" if cut is None else f" (cut {cut:.2f})")
            + f", clean accuracy {na:.3f} -> {ca:.3f}"
        )
        if main_epochs and ep > main_epochs and (cut is None or cut < p.backdoor_cut_target):
            lost.append(f"{ep} epochs cut {'n/a' if cut is None else f'{cut:.2f}'}")
    if len(rows) > 1:
        notes.append(f"Training length (victim epochs; {bd} undefended -> CutMix): " + "; ".join(rows) + ".")
    return ", ".join(lost)


def _r(v, nd=4):
    return None if v is None else round(v, nd)


def table_rows(summary: dict, attacks: list[str] | None = None, labels: list[str] | None = None) -> list[list]:
    """One row per (attack, defense): victims, failed ones, mean clean accuracy and success with their intervals,
    DP epsilon (rounded); in the order of `attacks` and `labels` when given (the cells arrive in run order)."""

    def order(key):
        a, d = key
        return (
            (attacks or []).index(a) if a in (attacks or []) else len(attacks or []),
            (labels or []).index(d) if d in (labels or []) else len(labels or []),
        )

    return [
        [a, d, s["trials"], s.get("failed", 0), *[_r(s.get(k)) for k in COLUMNS[4:10]], _r(s.get("defense.epsilon"), 3)]
        for (a, d), s in sorted(summary.items(), key=lambda kv: order(kv[0]))
    ]


def build(p: AugmentationParams, m: Measured, accept_min_clean_acc: float) -> Outcome:
    """`accept_min_clean_acc` (from section `security`): the clean network's check, which moves the model alias."""
    control = control_rate(m.controls) if m.controls else None
    found, extra = claims(p, m.summary, m.labels, control, m.victim_epochs)
    notes = (
        claim_notes(found)
        + extra
        + [
            f"CPU profile: {m.dataset} ({m.n_train} training images), the small GroupNorm victim of `security`"
            + ("" if m.victim_epochs is None else f" trained {m.victim_epochs} epochs")
            + f", {m.trials} setups per backdoor"
            + (
                f", {m.targeted_trials} target(s) per gradient-matching attack (so its rows show each defense's "
                "accuracy cost more than its protection)"
                if any(a.startswith("gradient_matching") for a, _ in m.summary)
                else ""
            )
            + "; the paper uses CIFAR-10 (50,000 images) with ResNet-18.",
            "Intervals: 95% Wilson over the pooled triggered test images (backdoor success), over targets (gradient "
            "matching), over the pooled test images (clean accuracy). Victims below `security.victim.min_clean_acc` "
            "are counted as failed training (column `failed`) and enter no mean.",
            "`batch_clip_noise` is the lab's batch-level clip-and-noise, NOT differentially private; `dpsgd(...)` rows "
            "are opacus DP-SGD (per-example clipping, RDP epsilon in the table).",
            "`gradient_matching+cutmix` is the adaptive attack: CutMix inside the crafting loss (lab --pmix).",
        ]
    )
    s = m.summary
    headline = {"clean_acc": m.clean_acc, **{c.id: c.measured for c in found}}
    headline["backdoor_control_success"] = None if control is None else control["success"]
    for d in ("none", "cutmix", "mixup"):
        headline[f"backdoor_{d}_success"] = _get(s, p.backdoor, d, "success")
        headline[f"backdoor_{d}_acc"] = _get(s, p.backdoor, d, "clean_acc")
    for k in ("success_lo", "success_hi"):
        headline[f"backdoor_cutmix_{k}"] = _get(s, p.backdoor, "cutmix", k)
    return Outcome(
        claims=found,
        headline=headline,
        notes=notes,
        description=(
            f"Defenses {', '.join(m.labels)} against {', '.join(p.attacks)} (backdoor of the claims: "
            f"{p.backdoor}), poisons reused from the craft_poisons stage."
        ),
        tables={
            "defenses": {
                "title": "Clean accuracy and attack success per defense (mean over setups, 95% Wilson intervals)",
                "columns": COLUMNS,
                "rows": table_rows(s, p.attacks, m.labels),
            }
        },
        details={"cells": m.cells, "clean_acc": m.clean_acc},
        passed=m.clean_acc >= accept_min_clean_acc,
    )


def write_figures(
    out: Outcome, p: AugmentationParams, m: Measured, plot_dir: Path, rel: str = "plots/augmentation"
) -> None:
    """The table as CSV (for `dvc plots`) and the accuracy-vs-success panels (with intervals); sets `out.figures`."""
    write_csv(Path(plot_dir) / "acc_vs_success.csv", COLUMNS, out.tables["defenses"]["rows"])
    keys = ("success", "clean_acc", "success_lo", "success_hi", "clean_acc_lo", "clean_acc_hi")
    points = {
        a: {
            d: tuple(_get(m.summary, a, d, k) for k in keys)
            for d in m.labels
            if _get(m.summary, a, d, "success") is not None
        }
        for a in p.attacks
    }
    acc_vs_success(Path(plot_dir) / "acc_vs_success.png", points, "clean accuracy vs attack success per defense")
    out.figures = [
        {
            "path": f"{rel}/acc_vs_success.png",
            "caption": "Validation accuracy against attack success for each defense (95% intervals), as in "
            "the paper's trade-off figure",
        }
    ]
