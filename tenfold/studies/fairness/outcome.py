"""From the measured training histories to the fairness study's claim, headline, tables, notes and figures (no
training here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from tenfold.core.claims import claim
from tenfold.core.outcome import Outcome
from tenfold.core.plotting import line_plot, write_csv
from tenfold.studies.fairness.data import FairData
from tenfold.studies.fairness.metrics import NOTION_NAMES
from tenfold.studies.fairness.params import FairnessParams
from tenfold.studies.fairness.study import CONSTRAINED, final, gap_resolution, overfit_summary, summary_table


@dataclass
class Measured:
    """What the fairness flow measured."""

    df: pd.DataFrame  # one row per (run, evaluated epoch): the `results_frame` of every deep-net run
    datasets: dict[str, FairData]  # the loaded datasets (sizes, cells, summaries)
    baselines: dict[tuple[str, str], dict] = field(default_factory=dict)  # (dataset, notion) -> fairlearn result
    runs: int = 0  # deep-net runs of the sweep


def r4(v) -> float:
    return round(float(v), 4)


def _cols(nt: str) -> list[str]:
    return ["train_acc", "test_acc", f"train_gap_{nt}", f"test_gap_{nt}"]


def _constrained_main(p: FairnessParams, df: pd.DataFrame) -> pd.DataFrame:
    """Rows of the constrained nets on the main dataset for the claim's notion (every width and epoch)."""
    nt = p.eval.claim_notion
    return df[(df.dataset == p.data.main) & (df.notion == nt) & df.method.isin(CONSTRAINED)]


def gap_by_epoch(p: FairnessParams, df: pd.DataFrame) -> pd.DataFrame:
    """Constrained nets, main dataset, largest width: mean train/test accuracy and gap per evaluated epoch."""
    sel = _constrained_main(p, df)
    return sel[sel.width == max(p.model.widths)].groupby("epoch")[_cols(p.eval.claim_notion)].mean()


def gap_by_width(p: FairnessParams, df: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series | None]:
    """Constrained nets, main dataset, last epoch: mean accuracy and gap per width, and the test noise floor."""
    nt = p.eval.claim_notion
    sel = final(_constrained_main(p, df))
    floor = sel.groupby("width")[f"test_floor_{nt}"].mean() if f"test_floor_{nt}" in sel else None
    return sel.groupby("width")[_cols(nt)].mean(), floor


def summaries(p: FairnessParams, m: Measured) -> tuple[dict, dict, dict]:
    """(main summary, ERM reference, per-dataset summaries) of `overfit_summary` at the largest width."""
    nt, widest, eps = p.eval.claim_notion, max(p.model.widths), p.train.epsilon
    res = {name: gap_resolution(ds.s_train, ds.y_train, nt) for name, ds in m.datasets.items()}
    head = overfit_summary(m.df, p.data.main, nt, widest, eps, res[p.data.main])
    erm = overfit_summary(m.df, p.data.main, nt, widest, eps, res[p.data.main], methods=("erm",))
    per_dataset = {name: overfit_summary(m.df, name, nt, widest, eps, res[name]) for name in p.data.datasets}
    return head, erm, per_dataset


def headline(head: dict, erm: dict) -> dict:
    """The report's first numbers: the claim's ratio and the main dataset's constrained-net summary (the full
    summary is also `overfit_by_dataset[<main>]`), and the ERM reference gaps. Names differ from the per-epoch
    MLflow series `train_gap` / `test_gap`."""
    out = {
        "fairness_overfits_ratio": head["ratio"],
        "meets_constraint": head["meets_constraint"],
        "constrained_runs": head["runs"],
    }
    out.update(
        {f"main_{k}": head.get(k) for k in ("train_gap", "test_gap", "test_noise_floor", "train_acc", "test_acc")}
    )
    out.update({"erm_train_gap": erm["train_gap"], "erm_test_gap": erm["test_gap"]})
    return out


def build(p: FairnessParams, m: Measured) -> Outcome:
    d, tr, ev = p.data, p.train, p.eval
    nt, widest = ev.claim_notion, max(p.model.widths)
    head, erm, per_dataset = summaries(p, m)
    ratio_ok = head["ratio"] is not None and head["ratio"] >= ev.overfit_ratio
    claims = [
        claim(
            "fairness_overfits",
            f"for the constrained deep nets ({', '.join(x for x in tr.methods if x in CONSTRAINED)}; width {widest}, "
            f"{tr.epochs} epochs, {d.main}), the test {NOTION_NAMES[nt]} gap is at least {ev.overfit_ratio}x the "
            f"train gap while the train gap meets the constraint (<= {tr.epsilon}); measured = test/train gap",
            "constraints hold on train data and break on test data (near-zero train disparity, large test disparity)",
            head["ratio"],
            ev.overfit_ratio,
            ">=",
            holds=bool(ratio_ok and head["meets_constraint"]),
            note=(
                f"train gap {head['train_gap']:.3f}, test gap {head['test_gap']:.3f}, test noise floor "
                f"{head['test_noise_floor']:.3f}"
                if head["runs"]
                else "no constrained run"
            ),
        )
    ]
    return Outcome(
        claims=claims,
        headline=headline(head, erm),
        tables=tables(p, m, per_dataset),
        notes=notes(p, m, claims, head, erm, per_dataset),
        description=(
            f"{m.runs} deep-net runs ({', '.join(tr.methods)} x {', '.join(tr.notions)}; widths "
            f"{p.model.widths}; {tr.seeds} seeds; {tr.epochs} epochs evaluated at "
            f"{tr.eval_epochs}) on {', '.join(d.datasets)}, constraint gap <= {tr.epsilon}, "
            "plus fairlearn's exponentiated-gradient reduction as the classical baseline."
        ),
        details={
            "erm_reference": erm,
            "overfit_by_dataset": per_dataset,
            "datasets": {n: ds.summary() for n, ds in m.datasets.items()},
            "baselines": {f"{n}/{k}": b for (n, k), b in m.baselines.items()},
            "deep_net_runs": m.runs,
        },
        passed=bool(head["runs"]) and head["train_gap"] <= ev.accept_max_train_gap,
    )


def tables(p: FairnessParams, m: Measured, per_dataset: dict) -> dict:
    d, tr = p.data, p.train
    nt, widest, df = p.eval.claim_notion, max(p.model.widths), m.df
    main_tab = summary_table(df[df.dataset == d.main], ["method", "notion", "width"], nt)
    other_tab = summary_table(df[(df.dataset != d.main) & (df.width == widest)], ["dataset", "method", "notion"], nt)
    by_epoch, (by_width, _) = gap_by_epoch(p, df), gap_by_width(p, df)
    out = {
        "main": {
            "title": f"{d.main}: final train/test accuracy and gap by method, notion and width "
            f"(mean of {tr.seeds} seeds, {tr.epochs} epochs; erm shows the {nt} gap)",
            "columns": ["method", "notion", "width", "train acc", "test acc", "train gap", "test gap"],
            "rows": [
                [r.method, r.notion, int(r.width), r4(r.train_acc), r4(r.test_acc), r4(r.train_gap), r4(r.test_gap)]
                for r in main_tab.itertuples()
            ],
        },
        "training_length": {
            "title": f"{d.main}, constrained nets, width {widest}: {NOTION_NAMES[nt]} along "
            "training (mean over methods and seeds)",
            "columns": ["epoch", "train acc", "test acc", "train gap", "test gap"],
            "rows": [[int(e), *[r4(v) for v in row]] for e, row in by_epoch.iterrows()],
        },
        "capacity": {
            "title": f"{d.main}, constrained nets, {tr.epochs} epochs: {NOTION_NAMES[nt]} by width",
            "columns": ["width", "train acc", "test acc", "train gap", "test gap"],
            "rows": [[int(w), *[r4(v) for v in row]] for w, row in by_width.iterrows()],
        },
        "datasets": {
            "title": f"Every dataset, width {widest}: final accuracy and gap (mean of seeds)",
            "columns": ["dataset", "method", "notion", "train acc", "test acc", "train gap", "test gap"],
            "rows": [
                [r.dataset, r.method, r.notion, r4(r.train_acc), r4(r.test_acc), r4(r.train_gap), r4(r.test_gap)]
                for r in other_tab.itertuples()
            ],
        },
        "overfit_by_dataset": {
            "title": f"Constrained nets ({NOTION_NAMES[nt]}, width {widest}): train vs test gap per dataset",
            "caption": "noise floor = mean test gap of the same predictions under random group relabellings",
            "columns": [
                "dataset",
                "n_train",
                "n_test",
                "train gap",
                "test gap",
                "test noise floor",
                "ratio",
                "meets constraint",
            ],
            "rows": [
                [
                    n,
                    len(m.datasets[n].y_train),
                    len(m.datasets[n].y_test),
                    *[
                        None if s.get(k) is None else r4(s[k])
                        for k in ("train_gap", "test_gap", "test_noise_floor", "ratio")
                    ],
                    s["meets_constraint"],
                ]
                for n, s in per_dataset.items()
            ],
        },
    }
    if m.baselines:
        out["fairlearn"] = {
            "title": f"fairlearn ExponentiatedGradient + logistic regression (constraint <= {tr.epsilon})",
            "columns": ["dataset", "notion", "train acc", "test acc", "train gap", "test gap"],
            "rows": [
                [n, k, r4(b["train_acc"]), r4(b["test_acc"]), r4(b[f"train_gap_{k}"]), r4(b[f"test_gap_{k}"])]
                for (n, k), b in m.baselines.items()
            ],
        }
    return out


def notes(p: FairnessParams, m: Measured, claims: list, head: dict, erm: dict, per_dataset: dict) -> list[str]:
    d, nt = p.data, p.eval.claim_notion
    out = [
        f"{'Reproduced' if c.holds else 'Not reproduced'} at this scale: `{c.id}` measured "
        f"{'n/a' if c.measured is None else f'{c.measured:.3f}'} (target {c.comparison} {c.target}); "
        f"{c.note}."
        for c in claims
    ]
    main = m.datasets[d.main]
    if head["runs"]:
        res = gap_resolution(main.s_train, main.y_train, nt)
        out.append(
            f"The test gaps include sampling noise: on the {len(main.y_test)} test rows of "
            f"{d.main} a group-blind classifier shows an {NOTION_NAMES[nt]} gap of about "
            f"{head['test_noise_floor']:.3f} (noise floor), so the constrained nets' test gap "
            f"({head['test_gap']:.3f}) exceeds it by {head['test_gap'] - head['test_noise_floor']:.3f}. "
            "A train gap of exactly 0 is counted at the train set's resolution (1 / smallest "
            f"conditioning cell = {res:.3f}) in the ratio."
        )
    if erm["runs"]:
        out.append(
            f"Unconstrained ERM nets of the same width reach train/test {nt} gaps of "
            f"{erm['train_gap']:.3f}/{erm['test_gap']:.3f}: a net that fits the training set exactly "
            "has zero equalized-odds and equal-opportunity gaps on it, constrained or not."
        )
    held = [
        n for n, s in per_dataset.items() if s["runs"] and s["meets_constraint"] and s["ratio"] >= p.eval.overfit_ratio
    ]
    out.append(
        f"The same test on every dataset (table overfit_by_dataset) holds on {len(held)} of "
        f"{len(per_dataset)}: {', '.join(held) or 'none'}."
    )
    image_model = (
        f"a small CNN (stride-2 conv blocks, channels = width x {p.model.cnn_channel_ratio:g})"
        if p.model.image_arch == "cnn"
        else "an MLP on flattened pixels"
    )
    out.append(
        f"Models are MLPs on tabular features and {image_model} on the digit images (the paper uses "
        "ResNets on CelebA and medical images); the sensitive attribute is not an input feature. CelebA "
        "is only used by the paper profile when a data root holds it."
    )
    return out


def write_figures(out: Outcome, p: FairnessParams, m: Measured, plot_dir: Path, rel: str = "plots/fairness") -> None:
    """Gap vs epoch and vs width (CSV for `dvc plots`, PNG for the report) and every run's history (runs.csv);
    sets `out.figures`."""
    d, nt, widest = p.data, p.eval.claim_notion, max(p.model.widths)
    by_epoch, (by_width, floor_w) = gap_by_epoch(p, m.df), gap_by_width(p, m.df)
    tg, sg = f"train_gap_{nt}", f"test_gap_{nt}"
    epochs = [int(e) for e in by_epoch.index]
    write_csv(
        plot_dir / "gap_vs_epoch.csv",
        ["epoch", "train_gap", "test_gap"],
        [[e, r4(by_epoch.loc[e, tg]), r4(by_epoch.loc[e, sg])] for e in epochs],
    )
    line_plot(
        plot_dir / "gap_vs_epoch.png",
        epochs,
        {"train gap": list(by_epoch[tg]), "test gap": list(by_epoch[sg])},
        "epoch",
        f"{nt} gap",
        f"{d.main}: constrained nets, width {widest}",
        vline=None,
    )
    widths = [int(w) for w in by_width.index]
    write_csv(
        plot_dir / "gap_vs_width.csv",
        ["width", "train_gap", "test_gap"],
        [[w, r4(by_width.loc[w, tg]), r4(by_width.loc[w, sg])] for w in widths],
    )
    series = {"train gap": list(by_width[tg]), "test gap": list(by_width[sg])}
    if floor_w is not None and not floor_w.isna().all():
        series["test noise floor"] = list(floor_w)
    line_plot(
        plot_dir / "gap_vs_width.png",
        widths,
        series,
        "hidden width",
        f"{nt} gap",
        f"{d.main}: constrained nets, {p.train.epochs} epochs",
    )
    write_csv(plot_dir / "runs.csv", list(m.df.columns), m.df.round(5).values.tolist())
    out.figures = [
        {
            "path": f"{rel}/gap_vs_epoch.png",
            "caption": f"Train vs test {NOTION_NAMES[nt]} gap along training ({d.main})",
        },
        {
            "path": f"{rel}/gap_vs_width.png",
            "caption": f"Train vs test {NOTION_NAMES[nt]} gap by model width ({d.main})",
        },
    ]
