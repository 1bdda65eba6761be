"""From the measured training histories to the fairness study's claim, headline, tables, notes and figures (no
training here).

The claim `fairness_overfits` is decided on the face headline: the constrained nets (penalty, Lagrangian,
adversarial; mean over methods, then seeds) of the largest CNN width on the main face task, at the full training
length, for the claim's notion. It holds when (1) the train gap meets the constraint (<= epsilon), (2) the test gap
is at least `overfit_ratio` x the train gap (a zero train gap counted at the train set's resolution), and (3) the
test gap exceeds the `floor_quantile` of its permutation noise floor. Every other configuration (other face
tasks, the medical and tabular sets) gets the same verdict as a table row; a test gap within its noise floor is
`inconclusive`, never `holds`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from tenfold.core.claims import claim
from tenfold.core.outcome import Outcome
from tenfold.core.plotting import plt, save, write_csv
from tenfold.studies.fairness.data import FairData
from tenfold.studies.fairness.metrics import NOTION_NAMES
from tenfold.studies.fairness.params import FairnessParams
from tenfold.studies.fairness.study import (
    ARCH_NAMES,
    CONSTRAINED,
    early_stopped,
    face_name,
    final,
    gap_resolution,
    hub,
    is_face,
    select,
    summarize,
    summary_table,
)


@dataclass
class Measured:
    """What the fairness flow measured."""

    df: pd.DataFrame  # one row per (run, evaluated epoch): the `results_frame` of every deep-net run
    datasets: dict[str, FairData]  # the loaded datasets at their default training size (cells, summaries)
    baselines: dict[tuple[str, str], dict] = field(default_factory=dict)  # (dataset, notion) -> fairlearn result
    runs: int = 0  # deep-net runs of the sweep


def r4(v):
    return None if v is None or (isinstance(v, float) and np.isnan(v)) else round(float(v), 4)


class View:
    """The reductions of one measurement under the params: the headline configuration and its axes."""

    def __init__(self, p: FairnessParams, m: Measured):
        self.p, self.m, self.df = p, m, m.df
        self.nt, self.eps = p.eval.claim_notion, p.face_train.epsilon
        self.main, (self.arch, self.widest) = face_name(p.faces.main), hub(p)
        self.net = f"{ARCH_NAMES[self.arch]} width {self.widest}"
        self.n = p.faces.n_train
        self.constrained = tuple(x for x in p.face_train.methods if x in CONSTRAINED)

    def resolution(self, dataset: str, notion: str | None = None) -> float:
        ds = self.m.datasets.get(dataset)
        return 1.0 if ds is None else gap_resolution(ds.s_train, ds.y_train, notion or self.nt)

    def summary(
        self, rows: pd.DataFrame, dataset: str | None = None, notion: str | None = None, eps: float | None = None
    ) -> dict:
        nt = notion or self.nt
        return summarize(
            rows,
            nt,
            self.eps if eps is None else eps,
            self.resolution(dataset or self.main, nt),
            self.p.eval.overfit_ratio,
        )

    def config(self, methods=None, arch=None, width=None, n=None, variant="base", notion=None, dataset=None):
        return select(
            self.df,
            dataset or self.main,
            notion or self.nt,
            methods or self.constrained,
            arch or self.arch,
            width or self.widest,
            n or self.n,
            variant,
        )

    def head(self) -> dict:
        return self.summary(final(self.config()))

    def erm(self) -> dict:
        return self.summary(final(self.config(methods=("erm",))))


def width_curve(v: View) -> list[dict]:
    out = []
    fm = v.p.face_model
    for arch in fm.archs:
        for w in fm.widths if arch == "cnn" else fm.resnet_widths:
            out.append(
                {
                    "arch": arch,
                    "width": w,
                    "c": v.summary(final(v.config(arch=arch, width=w))),
                    "e": v.summary(final(v.config(methods=("erm",), arch=arch, width=w))),
                }
            )
    return out


def epoch_curve(v: View) -> list[dict]:
    c_rows, e_rows = v.config(), v.config(methods=("erm",))
    return [
        {"epoch": int(e), "c": v.summary(c_rows[c_rows.epoch == e]), "e": v.summary(e_rows[e_rows.epoch == e])}
        for e in v.p.face_train.eval_epochs
    ]


def size_curve(v: View) -> list[dict]:
    sizes = sorted({v.n, *v.p.curves.sizes})
    return [
        {"n_train": n, "c": v.summary(final(v.config(n=n))), "e": v.summary(final(v.config(methods=("erm",), n=n)))}
        for n in sizes
    ]


def helps_rows(v: View) -> list[tuple[str, dict]]:
    """What helps, each on the helps methods of the headline configuration: as trained, early stopping on the
    held-out gap, weight decay, augmentation, the smallest width, the largest training set."""
    h, fm = v.p.helps, v.p.face_model
    methods = tuple(x for x in h.methods if x in v.constrained)
    base = v.config(methods=methods)
    rows = [
        (f"as trained ({v.net}, {v.p.face_train.epochs} epochs, n = {v.n})", v.summary(final(base))),
        (
            f"early stopping on the held-out {v.nt} gap (tolerance {h.early_stop_tolerance:g} in held-out accuracy)",
            v.summary(early_stopped(base, v.nt, h.early_stop_tolerance)),
        ),
        (f"weight decay {h.weight_decay:g}", v.summary(final(v.config(methods=methods, variant="wd")))),
    ]
    if h.augment:
        rows.append(
            ("augmentation (flips, 2-pixel shifts)", v.summary(final(v.config(methods=methods, variant="aug"))))
        )
    own = fm.widths if v.arch == "cnn" else fm.resnet_widths
    if min(own) < v.widest:  # the headline net's smallest width, else the smallest CNN (when CNNs are trained)
        arch, width = v.arch, min(own)
    else:
        arch, width = ("cnn", min(fm.widths)) if "cnn" in fm.archs else (v.arch, v.widest)
    if (arch, width) != (v.arch, v.widest):
        rows.append(
            (
                f"smaller capacity ({ARCH_NAMES[arch]} width {width})",
                v.summary(final(v.config(methods=methods, arch=arch, width=width))),
            )
        )
    biggest = max([v.n, *v.p.curves.sizes])
    if biggest != v.n:
        rows.append((f"more data (n = {biggest})", v.summary(final(v.config(methods=methods, n=biggest)))))
    return rows


def by_method(v: View) -> list[tuple[str, str, dict]]:
    """The headline configuration's verdict for each method (erm included) and each trained notion."""
    notions = [n for n in v.p.face_train.notions if n in set(v.df.notion)] if not v.df.empty else []
    return [
        (meth, n, v.summary(final(v.config(methods=(meth,), notion=n)), notion=n))
        for n in notions
        for meth in v.p.face_train.methods
    ]


def per_dataset(v: View) -> dict[str, dict]:
    """The claim's test on every face task (largest CNN width) and every secondary dataset (largest MLP width)."""
    out = {}
    for task in v.p.faces.tasks:
        name = face_name(task)
        for nt in sorted({n for n in v.df[v.df.dataset == name].notion.unique() if n != "none"}):
            out[f"{name}/{nt}"] = v.summary(final(v.config(dataset=name, notion=nt)), name, nt)
    wide = max(v.p.model.widths)
    for ds in v.p.data.datasets:
        for nt in v.p.train.notions:
            rows = final(select(v.df, ds, nt, CONSTRAINED, None, wide, None, "base"))
            out[f"{ds}/{nt}"] = v.summary(rows, ds, nt, v.p.train.epsilon)
    return out


def headline(v: View, head: dict, erm: dict, es: dict) -> dict:
    dp = v.summary(final(v.config(notion="dp")), notion="dp") if v.nt != "dp" else {}
    fl = v.m.baselines.get((v.main, v.nt), {})
    fl_emb = next((b for (n, k), b in v.m.baselines.items() if n.startswith(v.main + "+") and k == v.nt), {})
    return {
        "fairness_overfits_ratio": head["ratio"],
        "meets_constraint": head["meets_constraint"],
        "above_noise_floor": head["above_floor"],
        "constrained_runs": head["runs"],
        **{
            f"main_{k}": head.get(k)
            for k in (
                "train_gap",
                "train_gap_hi",
                "test_gap",
                "test_gap_lo",
                "test_gap_hi",
                "test_floor",
                "test_floorq",
                "train_acc",
                "test_acc",
            )
        },
        "erm_train_gap": erm.get("train_gap"),
        "erm_test_gap": erm.get("test_gap"),
        "main_dp_train_gap": dp.get("train_gap"),
        "main_dp_test_gap": dp.get("test_gap"),
        "early_stop_test_gap": es.get("test_gap"),
        "fairlearn_test_gap": fl.get(f"test_gap_{v.nt}"),
        "fairlearn_embedding_test_gap": fl_emb.get(f"test_gap_{v.nt}"),
    }


def _fmt_iv(s: dict, k: str) -> str:
    if s.get(k) is None:
        return "n/a"
    lo, hi = s.get(f"{k}_lo"), s.get(f"{k}_hi")
    return f"{s[k]:.3f}" + ("" if lo is None else f" [{lo:.3f}, {hi:.3f}]")


def build(p: FairnessParams, m: Measured) -> Outcome:
    v = View(p, m)
    head, erm = v.head(), v.erm()
    helps = helps_rows(v)
    es = helps[1][1]
    nt, ev = v.nt, p.eval
    q = f"{100 * ev.floor_quantile:g}th percentile"
    note = (
        "no constrained run"
        if not head["runs"]
        else f"train gap {_fmt_iv(head, 'train_gap')}, test gap {_fmt_iv(head, 'test_gap')} (mean over "
        f"{len(v.constrained)} methods, [95% interval over {head['seeds']} seeds]); test noise floor mean "
        f"{head['test_floor']:.3f}, {q} {head['test_floorq']:.3f}; {head['runs_holding']} of {head['runs']} "
        f"single runs meet all three conditions; verdict: {head['status']}"
    )
    claims = [
        claim(
            "fairness_overfits",
            f"on faces ({v.main}: {m.datasets[v.main].target if v.main in m.datasets else ''} with "
            f"{m.datasets[v.main].group if v.main in m.datasets else ''} as the sensitive attribute), the constrained "
            f"{ARCH_NAMES[v.arch]}s ({', '.join(v.constrained)}; width {v.widest}, {p.face_train.epochs} epochs, "
            f"{v.n} training faces) "
            f"meet the {NOTION_NAMES[nt]} constraint on train (gap <= {v.eps}), their test gap is at least "
            f"{ev.overfit_ratio}x the train gap and above the {q} of its permutation noise floor; measured = "
            "test/train gap (a zero train gap counted at the train set's resolution)",
            "deep nets overfit fairness constraints: (near) zero disparity on the training set, large disparity "
            "on test",
            head["ratio"],
            ev.overfit_ratio,
            ">=",
            holds=head["holds"],
            note=note,
        )
    ]
    pd_ = per_dataset(v)
    return Outcome(
        claims=claims,
        headline=headline(v, head, erm, es),
        tables=tables(v, head, erm, helps, pd_),
        notes=notes(v, claims, head, erm, helps, pd_),
        description=(
            f"{m.runs} deep-net runs: on UTKFace ({', '.join(p.faces.tasks)}; main {p.faces.main}) "
            + " and ".join(
                f"CNNs of widths {p.face_model.widths}"
                if a == "cnn"
                else f"ResNet-style nets of widths {p.face_model.resnet_widths}"
                for a in p.face_model.archs
            )
            + " "
            f"({', '.join(p.face_train.methods)} x {', '.join(p.face_train.notions)}, {p.face_train.seeds} "
            f"seeds, {p.face_train.epochs} epochs evaluated at {p.face_train.eval_epochs}, "
            f"{p.faces.n_train} training / {p.faces.n_val} held-out / {p.faces.n_test} test faces at "
            f"{p.faces.size}x{p.faces.size}), training sizes {sorted({v.n, *p.curves.sizes})}, what-helps "
            f"variants; MLPs on {', '.join(p.data.datasets) or 'no'} secondary datasets; fairlearn's "
            "exponentiated-gradient reduction on fixed features as the classical baseline."
        ),
        details={
            "erm_reference": erm,
            "overfit_by_dataset": pd_,
            "datasets": {n: ds.summary() for n, ds in m.datasets.items()},
            "baselines": {f"{n}/{k}": b for (n, k), b in m.baselines.items()},
            "deep_net_runs": m.runs,
            "curves": {"width": width_curve(v), "epoch": epoch_curve(v), "size": size_curve(v)},
            "helps": [{"row": r, **s} for r, s in helps],
        },
        passed=bool(head["runs"]) and head["train_gap"] <= ev.accept_max_train_gap,
    )


def _srow(s: dict) -> list:
    return [
        r4(s.get("train_acc")),
        r4(s.get("test_acc")),
        r4(s.get("train_gap")),
        r4(s.get("test_gap")),
        r4(s.get("test_gap_lo")),
        r4(s.get("test_gap_hi")),
        r4(s.get("test_floorq")),
    ]


SCOLS = ["train acc", "test acc", "train gap", "test gap", "test gap lo", "test gap hi", "test floor q"]


def tables(v: View, head: dict, erm: dict, helps, pd_: dict) -> dict:
    p, m, nt = v.p, v.m, v.nt
    faces_df = (
        v.df[v.df.dataset.map(is_face) & (v.df.variant == "base") & (v.df.n_train == v.n)] if not v.df.empty else v.df
    )
    runs_tab = summary_table(faces_df, ["dataset", "arch", "width", "method", "notion"], nt)
    q = f"{100 * p.eval.floor_quantile:g}th percentile"
    iv = "[lo, hi]: 95% t-interval over seeds of the per-seed mean over the constrained methods"
    out = {
        "faces": {
            "title": f"Faces: final train/test accuracy and gap by task, net, width, method and notion (mean of "
            f"{p.face_train.seeds} seeds, {p.face_train.epochs} epochs, n = {v.n}; erm shows the {nt} "
            "gap)",
            "columns": [
                "dataset",
                "arch",
                "width",
                "method",
                "notion",
                "train acc",
                "test acc",
                "train gap",
                "test gap",
                f"test floor {q}",
            ],
            "rows": [
                [
                    r.dataset,
                    r.arch,
                    int(r.width),
                    r.method,
                    r.notion,
                    r4(r.train_acc),
                    r4(r.test_acc),
                    r4(r.train_gap),
                    r4(r.test_gap),
                    r4(r.test_floorq),
                ]
                for r in runs_tab.itertuples()
            ],
        },
        "by_method": {
            "title": f"{v.main}, {v.net}, {p.face_train.epochs} epochs: the claim's test for "
            "each method and notion separately (the claim averages the constrained methods)",
            "caption": iv.replace("the per-seed mean over the constrained methods", "the seeds"),
            "columns": ["method", "notion", *SCOLS, "ratio", "status"],
            "rows": [[meth, n, *_srow(sm), r4(sm.get("ratio")), sm["status"]] for meth, n, sm in by_method(v)],
        },
        "capacity": {
            "title": f"{v.main}: {NOTION_NAMES[nt]} by width (constrained nets; erm beside), "
            f"{p.face_train.epochs} epochs",
            "caption": iv,
            "columns": ["arch", "width", *SCOLS, "erm train gap", "erm test gap", "status"],
            "rows": [
                [
                    r["arch"],
                    r["width"],
                    *_srow(r["c"]),
                    r4(r["e"].get("train_gap")),
                    r4(r["e"].get("test_gap")),
                    r["c"]["status"],
                ]
                for r in width_curve(v)
            ],
        },
        "training_length": {
            "title": f"{v.main}, {v.net}: {NOTION_NAMES[nt]} along training",
            "caption": iv,
            "columns": ["epoch", *SCOLS, "erm train gap", "erm test gap", "status"],
            "rows": [
                [r["epoch"], *_srow(r["c"]), r4(r["e"].get("train_gap")), r4(r["e"].get("test_gap")), r["c"]["status"]]
                for r in epoch_curve(v)
            ],
        },
        "training_size": {
            "title": f"{v.main}, {v.net}: {NOTION_NAMES[nt]} by training-set size",
            "caption": iv,
            "columns": ["n_train", *SCOLS, "erm train gap", "erm test gap", "status"],
            "rows": [
                [
                    r["n_train"],
                    *_srow(r["c"]),
                    r4(r["e"].get("train_gap")),
                    r4(r["e"].get("test_gap")),
                    r["c"]["status"],
                ]
                for r in size_curve(v)
            ],
        },
        "what_helps": {
            "title": f"What helps the {NOTION_NAMES[nt]} constraint generalise ({', '.join(p.helps.methods)}"
            f"; {v.main})",
            "caption": iv.replace("constrained methods", "helps methods"),
            "columns": ["row", *SCOLS, "test - train gap", "status"],
            "rows": [
                [
                    name,
                    *_srow(s),
                    r4(None if s.get("test_gap") is None else s["test_gap"] - s["train_gap"]),
                    s["status"],
                ]
                for name, s in helps
            ],
        },
        "overfit_by_dataset": {
            "title": "The claim's test on every dataset (constrained nets, largest width, final epoch)",
            "caption": f"noise floor: the test gap of the same predictions under {p.eval.noise_permutations} random "
            f"relabellings of the group; q = its {q}. A test gap within it is inconclusive.",
            "columns": [
                "dataset/notion",
                "n_train",
                "n_test",
                "train gap",
                "test gap",
                "floor mean",
                "floor q",
                "ratio",
                "status",
            ],
            "rows": [
                [
                    k,
                    len(m.datasets[k.split("/")[0]].y_train) if k.split("/")[0] in m.datasets else None,
                    len(m.datasets[k.split("/")[0]].y_test) if k.split("/")[0] in m.datasets else None,
                    r4(s.get("train_gap")),
                    r4(s.get("test_gap")),
                    r4(s.get("test_floor")),
                    r4(s.get("test_floorq")),
                    r4(s.get("ratio")),
                    s["status"],
                ]
                for k, s in pd_.items()
            ],
        },
    }
    if m.baselines:
        out["fairlearn"] = {
            "title": f"fairlearn ExponentiatedGradient + logistic regression on fixed features (faces: "
            f"{p.baseline.pca_components} principal components of the pixels; `+<model>`: that pretrained "
            f"recognizer's embeddings of the faces), constraint <= {p.train.epsilon}",
            "columns": ["dataset", "notion", "train acc", "test acc", "train gap", "test gap", "test floor q"],
            "rows": [
                [
                    n,
                    k,
                    r4(b["train_acc"]),
                    r4(b["test_acc"]),
                    r4(b[f"train_gap_{k}"]),
                    r4(b[f"test_gap_{k}"]),
                    r4(b.get(f"test_floorq_{k}")),
                ]
                for (n, k), b in m.baselines.items()
            ],
        }
    return out


def notes(v: View, claims: list, head: dict, erm: dict, helps, pd_: dict) -> list[str]:
    p, nt = v.p, v.nt
    c = claims[0]
    out = [
        f"{'Reproduced' if c.holds else 'Not reproduced'} at this scale: `{c.id}` measured "
        f"{'n/a' if c.measured is None else f'{c.measured:.3f}'} (target {c.comparison} {c.target}); {c.note}."
    ]
    if head["runs"]:
        out.append(
            f"Noise floor: on the {p.faces.n_test} test faces a group-blind classifier with the same "
            f"predictions shows an {NOTION_NAMES[nt]} gap of {head['test_floor']:.3f} on average and above "
            f"{head['test_floorq']:.3f} in {100 * (1 - p.eval.floor_quantile):g}% of relabellings; a train gap "
            f"of 0 is counted at the train set's resolution ({v.resolution(v.main):.4f}) in the ratio."
        )
    if erm.get("runs"):
        out.append(
            f"Unconstrained {ARCH_NAMES[v.arch]}s of the same width: train/test {nt} gap {erm['train_gap']:.3f}/"
            f"{erm['test_gap']:.3f}, accuracy {erm['train_acc']:.3f}/{erm['test_acc']:.3f}; a net that fits "
            "its training set exactly has zero equalized-odds gap on it, constrained or not."
        )
    fin = final(v.config(methods=v.constrained))
    if not fin.empty and "test_pos" in fin:
        low = fin[(fin.test_pos <= 0.05) | (fin.test_pos >= 0.95)]
        if len(low):
            out.append(
                f"Levelling down: {len(low)} of {len(fin)} constrained runs of the headline configuration end "
                "predicting (nearly) one class on test (positive rate <= 0.05 or >= 0.95; "
                f"{', '.join(f'{k}: {n}' for k, n in low.method.value_counts().items())}): such a net meets any "
                "constraint on train and test at the cost of accuracy."
            )
    fixed = [(n, b) for (n, k), b in v.m.baselines.items() if k == nt and (n == v.main or n.startswith(v.main + "+"))]
    if fixed:
        out.append(
            "Classical baseline (fairlearn's reduction on fixed features, main task): "
            + "; ".join(
                f"{'pixels (PCA)' if n == v.main else n.split('+', 1)[1] + ' embeddings'}: train/test {nt} gap "
                f"{b[f'train_gap_{nt}']:.3f}/{b[f'test_gap_{nt}']:.3f}, test accuracy {b['test_acc']:.3f}"
                for n, b in fixed
            )
            + "."
        )
    fm, left = p.face_model, []
    if "cnn" not in fm.archs and len(fm.resnet_widths) == 1:
        left.append("the capacity axis (CNN widths; `face_model.archs: [cnn, resnet]`)")
    if not p.curves.sizes:
        left.append("the training-set-size axis (`curves.sizes`)")
    if left:
        out.append(
            f"Not run here: {' and '.join(left)}; profile cpu-full runs them (CPU budget), and their numbers from a "
            "cpu-full run are in benchmarks/results.md."
        )
    held = [k for k, s in pd_.items() if s["status"] == "holds"]
    inconc = [k for k, s in pd_.items() if s["status"].startswith("inconclusive")]
    out.append(
        f"Per dataset (table overfit_by_dataset): the claim's test holds on {', '.join(held) or 'none'}; "
        f"inconclusive (test gap within its noise floor) on {', '.join(inconc) or 'none'}."
    )
    best = min((s for s in helps[1:] if s[1].get("test_gap") is not None), key=lambda s: s[1]["test_gap"], default=None)
    if best is not None and helps[0][1].get("test_gap") is not None:
        out.append(
            f"What helps ({', '.join(p.helps.methods)}): as trained the test gap is "
            f"{helps[0][1]['test_gap']:.3f}; the smallest test gap among the remedies is "
            f"{best[1]['test_gap']:.3f} ({best[0]}, test accuracy {best[1]['test_acc']:.3f})."
        )
    return out


def _panel(ax, xs, rows, key, label, **kw):
    ys = [r[key].get("test_gap" if "test" in label else "train_gap") for r in rows]
    lo = [r[key].get("test_gap_lo" if "test" in label else "train_gap_lo") for r in rows]
    hi = [r[key].get("test_gap_hi" if "test" in label else "train_gap_hi") for r in rows]
    ys = [np.nan if y is None else y for y in ys]
    err = None
    if all(a is not None for a in lo + hi):
        err = [np.subtract(ys, lo), np.subtract(hi, ys)]
    ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=label, **kw)


def _curve_figure(path, xs, rows, xlabel, title, nt, log_x=False):
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    _panel(ax, xs, rows, "c", "constrained: train gap", color="tab:blue")
    _panel(ax, xs, rows, "c", "constrained: test gap", color="tab:red")
    ax.plot(
        xs,
        [np.nan if r["e"].get("test_gap") is None else r["e"]["test_gap"] for r in rows],
        "--",
        color="grey",
        marker="x",
        label="erm: test gap",
    )
    ax.plot(
        xs,
        [np.nan if r["c"].get("test_floorq") is None else r["c"]["test_floorq"] for r in rows],
        ":",
        color="black",
        label="test noise floor (q)",
    )
    if log_x:
        ax.set_xscale("log", base=2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"{nt} gap")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save(fig, path)


def write_figures(out: Outcome, p: FairnessParams, m: Measured, plot_dir: Path, rel: str = "plots/fairness") -> None:
    """Gap vs epoch, width and training-set size (CSV for `dvc plots`, PNG with seed intervals and the noise floor
    for the report) and every run's history (runs.csv); sets `out.figures`."""
    v = View(p, m)
    nt = v.nt
    plot_dir = Path(plot_dir)
    cols = ["train_gap", "test_gap", "test_gap_lo", "test_gap_hi", "test_floorq", "erm_test_gap"]

    def row(r):
        c = r["c"]
        return [r4(c.get(k)) for k in cols[:-1]] + [r4(r["e"].get("test_gap"))]

    ep, wd, sz = epoch_curve(v), width_curve(v), size_curve(v)
    write_csv(plot_dir / "gap_vs_epoch.csv", ["epoch", *cols], [[r["epoch"], *row(r)] for r in ep])
    write_csv(plot_dir / "gap_vs_width.csv", ["arch", "width", *cols], [[r["arch"], r["width"], *row(r)] for r in wd])
    write_csv(plot_dir / "gap_vs_size.csv", ["n_train", *cols], [[r["n_train"], *row(r)] for r in sz])
    _curve_figure(
        plot_dir / "gap_vs_epoch.png", [r["epoch"] for r in ep], ep, "epoch", f"{v.main}: {v.net}, along training", nt
    )
    family = "cnn" if "cnn" in p.face_model.archs else v.arch  # the CNN capacity axis, else the headline's widths
    fam = [r for r in wd if r["arch"] == family]
    _curve_figure(
        plot_dir / "gap_vs_width.png",
        [r["width"] for r in fam],
        fam,
        f"{ARCH_NAMES[family]} channels",
        f"{v.main}: by width ({p.face_train.epochs} epochs)",
        nt,
        log_x=True,
    )
    _curve_figure(
        plot_dir / "gap_vs_size.png",
        [r["n_train"] for r in sz],
        sz,
        "training faces",
        f"{v.main}: by training-set size ({v.net})",
        nt,
        log_x=True,
    )
    write_csv(
        plot_dir / "runs.csv",
        list(m.df.columns),
        m.df.round(5).astype(object).where(m.df.notna(), None).values.tolist(),
    )
    out.figures = [
        {
            "path": f"{rel}/gap_vs_epoch.png",
            "caption": f"Train vs test {NOTION_NAMES[nt]} gap along training ({v.main}; bars: 95% interval "
            "over seeds; dotted: the test gap's noise-floor quantile)",
        },
        {
            "path": f"{rel}/gap_vs_width.png",
            "caption": f"Train vs test {NOTION_NAMES[nt]} gap by {ARCH_NAMES[family]} width ({v.main})",
        },
        {
            "path": f"{rel}/gap_vs_size.png",
            "caption": f"Train vs test {NOTION_NAMES[nt]} gap by training-set size ({v.main})",
        },
    ]


def write_cpu_seconds(cpu: dict[str, float | None], plot_dir: Path) -> None:
    """plots/fairness/cpu_seconds.csv: CPU seconds of each part of the study in this run (empty: resumed)."""
    write_csv(
        Path(plot_dir) / "cpu_seconds.csv",
        ["part", "cpu_seconds"],
        [[k, None if v is None else round(v, 1)] for k, v in cpu.items()],
    )
