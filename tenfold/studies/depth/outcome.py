"""From the trained nets' test accuracies and predictions to the depth study's claim, tables, notes and figures
(no training here)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tenfold.core.claims import claim
from tenfold.core.outcome import Outcome
from tenfold.core.plotting import line_plot, write_csv
from tenfold.studies.depth.models import agreement
from tenfold.studies.depth.params import DepthParams


@dataclass
class Measured:
    """What the depth flow measured."""

    # (family, effective depth, recurrent, seed index) -> {"acc", "iters", "params", "pred" (test predictions)}
    runs: dict[tuple[str, int, bool, int], dict]
    data_name: str
    data_source: str
    n_train: int
    n_test: int


def per_depth(p: DepthParams, m: Measured) -> dict[str, list[dict]]:
    """Per family, one record per matched effective depth: accuracies (mean over seeds), parameter counts, per-seed
    differences and the mean agreement of predictions between the recurrent net and its feed-forward twin."""
    out = {}
    for fam in p.families:
        recs = []
        for depth in fam.depths:
            r = {rec: [m.runs[(fam.name, depth, rec, s)] for s in range(p.seeds)] for rec in (True, False)}
            a = {rec: float(np.mean([x["acc"] for x in r[rec]])) for rec in (True, False)}
            recs.append(
                {
                    "depth": depth,
                    "iters": r[True][0]["iters"],
                    "recurrent": a[True],
                    "feedforward": a[False],
                    "recurrent_params": r[True][0]["params"],
                    "feedforward_params": r[False][0]["params"],
                    "diffs": [r[True][s]["acc"] - r[False][s]["acc"] for s in range(p.seeds)],
                    "agreement": float(
                        np.mean([agreement(r[True][s]["pred"], r[False][s]["pred"]) for s in range(p.seeds)])
                    ),
                }
            )
        out[fam.name] = recs
    return out


def data_note(p: DepthParams, m: Measured) -> str:
    """Which data every number of the study used (one dataset for all nets), and how it differs from the paper's."""
    subset = (
        f"{m.n_train} train / {m.n_test} test images (class-stratified subsets)"
        f"{', standardised per channel with the training statistics' if p.data.standardize else ''}"
    )
    scale = f"narrow nets trained for {p.train.epochs} epochs instead of 200, no augmentation"
    if m.data_name == "cifar10":
        return (
            f"Data: every accuracy, gap and agreement here is on CIFAR-10 ({m.data_source}): {subset}; the "
            f"paper also uses SVHN and EMNIST; {scale}."
        )
    return (
        f"Data: every accuracy, gap and agreement here is on {m.data_name} ({m.data_source}): {subset}, instead "
        f"of CIFAR-10/SVHN/EMNIST; {scale}."
    )


def step_metrics(p: DepthParams, m: Measured) -> list[tuple[int, dict[str, float]]]:
    """The per-depth MLflow metrics: (effective depth as the step, {family_recurrent_acc, ...})."""
    return [
        (
            r["depth"],
            {
                f"{fam}_recurrent_acc": r["recurrent"],
                f"{fam}_feedforward_acc": r["feedforward"],
                f"{fam}_agreement": r["agreement"],
            },
        )
        for fam, recs in per_depth(p, m).items()
        for r in recs
    ]


def build(p: DepthParams, m: Measured) -> Outcome:
    table = per_depth(p, m)
    gaps = [abs(r["recurrent"] - r["feedforward"]) for recs in table.values() for r in recs]
    agreements = [r["agreement"] for recs in table.values() for r in recs]
    family_gap = {
        fam: float(np.mean([abs(r["recurrent"] - r["feedforward"]) for r in recs])) for fam, recs in table.items()
    }
    rows = [
        [
            fam,
            r["depth"],
            r["iters"],
            round(r["recurrent"], 4),
            r["recurrent_params"],
            round(r["feedforward"], 4),
            r["feedforward_params"],
            round(r["recurrent"] - r["feedforward"], 4),
            " / ".join(f"{x:+.3f}" for x in r["diffs"]),
            round(r["agreement"], 4),
        ]
        for fam, recs in table.items()
        for r in recs
    ]
    curves = {
        fam: {
            "depths": [r["depth"] for r in recs],
            "recurrent": [r["recurrent"] for r in recs],
            "feedforward": [r["feedforward"] for r in recs],
        }
        for fam, recs in table.items()
    }
    mean_gap, mean_agreement = float(np.mean(gaps)), float(np.mean(agreements))
    claims = [
        claim(
            "depth_emulation",
            "recurrent and feed-forward nets reach similar accuracy at equal effective depth "
            "(mean absolute accuracy gap over the matched depths, as a fraction)",
            "recurrent nets closely match feed-forward nets of the same effective depth on CIFAR-10, "
            "SVHN and EMNIST, with far fewer parameters",
            mean_gap,
            p.max_gap,
            "<=",
        )
    ]
    notes = [
        f"{'Reproduced' if c.holds else 'Not reproduced'} at this scale: `{c.id}` measured {c.measured:.4f} "
        f"(target {c.comparison} {c.target})."
        for c in claims
    ]
    notes.append(
        "Mean |recurrent - feed-forward| accuracy gap per family: "
        + ", ".join(f"{k} {v:.4f}" for k, v in family_gap.items())
        + "; the claim averages over all matched depths."
    )
    notes.append(
        f"Mean agreement of predictions between recurrent and feed-forward nets at equal depth: {mean_agreement:.3f}."
    )
    notes.append(data_note(p, m))
    if p.init != "default":
        notes.append(
            "Init: He (Kaiming) init replaces PyTorch's default so the no-BN nets train within a few "
            "CPU epochs; the paper profile uses the default init of the official code."
        )
    own_lr = [f for f in p.families if f.recurrent_lr]
    if own_lr:
        notes.append(
            "Learning rates of the recurrent nets as in the official launch scripts: "
            + ", ".join(f"{f.name} recurrent {f.recurrent_lr:g} vs feed-forward {f.lr or p.train.lr:g}" for f in own_lr)
            + "."
        )
    headline = {"mean_abs_gap": mean_gap, "mean_agreement": mean_agreement}
    for fam, recs in table.items():
        deepest = max(recs, key=lambda r: r["depth"])
        headline.update(
            {
                f"{fam}_gap": family_gap[fam],
                f"{fam}_deepest_recurrent_acc": deepest["recurrent"],
                f"{fam}_deepest_feedforward_acc": deepest["feedforward"],
            }
        )
    return Outcome(
        claims=claims,
        headline=headline,
        notes=notes,
        description=(
            "Recurrent nets (one block applied k times, shared weights) and feed-forward twins "
            "(k distinct blocks) of the same effective depth are trained identically on "
            f"{m.data_name}; accuracy, parameters and prediction agreement are compared per depth."
        ),
        tables={
            "depth": {
                "title": f"Recurrent vs feed-forward at matched effective depth ({m.data_name}, "
                f"mean over {p.seeds} seed(s))",
                "columns": [
                    "family",
                    "effective depth",
                    "iterations",
                    "recurrent acc",
                    "recurrent params",
                    "feed-forward acc",
                    "feed-forward params",
                    "rec - ff",
                    "rec - ff per seed",
                    "agreement",
                ],
                "rows": rows,
            }
        },
        details={
            "curves": curves,
            "mean_abs_gap": mean_gap,
            "family_gap": family_gap,
            "mean_agreement": mean_agreement,
            "data": m.data_name,
            "data_source": m.data_source,
            "n_train": m.n_train,
            "n_test": m.n_test,
        },
        passed=claims[0].holds,
    )


def write_figures(out: Outcome, p: DepthParams, m: Measured, plot_dir: Path, rel: str = "plots/depth") -> None:
    """Accuracy vs effective depth per family (CSV for `dvc plots`, PNG for the report); sets `out.figures`."""
    out.figures = []
    for fam, c in out.details["curves"].items():
        write_csv(
            plot_dir / f"{fam}_acc_vs_depth.csv",
            ["depth", "recurrent", "feedforward"],
            [[d, c["recurrent"][i], c["feedforward"][i]] for i, d in enumerate(c["depths"])],
        )
        line_plot(
            plot_dir / f"{fam}_acc_vs_depth.png",
            c["depths"],
            {"recurrent": c["recurrent"], "feed-forward": c["feedforward"]},
            "effective depth",
            "test accuracy",
            f"{fam} on {m.data_name}: recurrent vs feed-forward",
        )
        out.figures.append(
            {"path": f"{rel}/{fam}_acc_vs_depth.png", "caption": f"{fam}: test accuracy vs effective depth"}
        )


def main_net(p: DepthParams) -> tuple[str, int]:
    """The registered net: the deepest recurrent net of the first family (seed index 0)."""
    return p.families[0].name, max(p.families[0].depths)
