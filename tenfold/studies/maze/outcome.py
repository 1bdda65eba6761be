"""From measured exact-match curves to the maze study's claims, tables, notes and figures (no training here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tenfold.core.claims import claim
from tenfold.core.outcome import Outcome, claim_notes
from tenfold.core.plotting import line_plot, write_csv
from tenfold.studies.maze import plots
from tenfold.studies.maze.params import MazeParams


@dataclass
class Measured:
    """What the maze flow measured."""

    acc: dict[int, dict[int, float]]  # maze size -> test-time iterations -> exact match
    history: list[dict]  # per-epoch training loss of the main net
    parameters: int  # of the main recurrent net
    n_train: int  # training mazes
    twins: list[list] = field(default_factory=list)  # [iters, effective depth, rec acc, rec params, ff acc, ff params]
    examples: tuple | None = None  # (codes, targets, predictions, iterations) on the largest size


def iteration_counts(p: MazeParams) -> list[int]:
    """Test-time iteration counts evaluated: the params' list plus the training count."""
    return sorted(set(p.eval.test_iters) | {p.model.train_iters})


def build(p: MazeParams, m: Measured) -> Outcome:
    d, T, xs = p.data, p.model.train_iters, p.eval.extrapolation_size
    acc, iters = m.acc, iteration_counts(p)
    best_iter = max(acc[xs], key=acc[xs].get)
    larger = [s for s in d.test_sizes if s > d.train_size]
    gains = {s: max(v for k, v in acc[s].items() if k > T) - acc[s][T] for s in larger if any(k > T for k in acc[s])}
    claims = [
        claim(
            "extrapolation",
            f"a recurrent net trained on size-{d.train_size} mazes solves size-{xs} mazes when allowed more "
            "iterations at test time (exact match, best test iteration count)",
            "trained on small mazes, solves larger ones by thinking longer",
            acc[xs][best_iter],
            p.eval.extrapolation_target,
            ">=",
        ),
        claim(
            "more_iterations_help",
            "larger mazes are solved better with more iterations than trained with (min over larger sizes of "
            "best accuracy beyond the training iterations minus accuracy at the training iterations)",
            "accuracy on larger mazes rises with test-time iterations",
            min(gains.values()) if gains else None,
            0.0,
            ">",
        ),
    ]
    notes = claim_notes(claims)
    for s in larger:
        last = acc[s][max(iters)]
        if last < max(acc[s].values()) - 0.02:
            notes.append(
                f"Size {s}: accuracy peaks at {max(acc[s], key=acc[s].get)} iterations and falls to "
                f"{last:.3f} at {max(iters)} ('overthinking'); the progressive loss (maze.train.alpha > 0, "
                "as in the paper profile) is the paper's remedy."
            )
    if d.scale == 1:
        notes.append(
            "CPU profile: one pixel per maze grid cell (scale 1); the paper profile uses the "
            "easy-to-hard-data layout (scale 2, side 2s+6)."
        )
    if p.model.init != "default":
        notes.append(
            f"Initialisation `{p.model.init}` (He init, zero-initialised second conv per residual "
            "block) replaces PyTorch's default so that a few CPU minutes suffice; the paper profile "
            "uses the default init of the original code."
        )
    final_loss = m.history[-1]["loss"] if m.history else None
    headline = {
        "extrapolation_acc": acc[xs][best_iter],
        "extrapolation_best_iters": best_iter,
        "train_size_acc": acc[d.train_size][T],
        "extrapolation_acc_at_train_iters": acc[xs][T],
        "largest_size_best_acc": max(acc[max(d.test_sizes)].values()),
        "final_train_loss": final_loss,
        "parameters": m.parameters,
    }
    for k, rec_acc, ff_acc in ((r[0], r[2], r[4]) for r in m.twins):
        headline[f"twin_{k}_recurrent_acc"], headline[f"twin_{k}_feedforward_acc"] = rec_acc, ff_acc
    return Outcome(
        claims=claims,
        headline=headline,
        notes=notes,
        description=(
            f"A recurrent net (width {p.model.width}, {T} iterations, effective depth {4 + 4 * T}, "
            f"{m.parameters} parameters) is trained on {m.n_train} size-{d.train_size} "
            f"mazes and tested on sizes {d.test_sizes} with up to {max(iters)} iterations."
        ),
        tables={
            "exact_match": {
                "title": "Exact match by maze size and test-time iterations",
                "columns": ["size", *[f"{k} it" for k in iters]],
                "rows": [[s, *[round(acc[s][k], 4) for k in iters]] for s in d.test_sizes],
            },
            "twins": {
                "title": "Recurrent vs feed-forward at matched effective depth (training size)",
                "caption": "Twins trained with the same data and schedule; the feed-forward net has "
                "distinct weights per iteration.",
                "columns": [
                    "iterations",
                    "effective depth",
                    "recurrent acc",
                    "recurrent params",
                    "feed-forward acc",
                    "feed-forward params",
                ],
                "rows": m.twins,
            },
        },
        details={
            "exact_match": {str(s): {str(k): v for k, v in a.items()} for s, a in acc.items()},
            "best_iters": {str(s): max(a, key=a.get) for s, a in acc.items()},
            "final_train_loss": final_loss,
            "parameters": m.parameters,
        },
        passed=acc[d.train_size][T] >= p.eval.accept_min_train_acc,
    )


def write_figures(out: Outcome, p: MazeParams, m: Measured, plot_dir: Path, rel: str = "plots/maze") -> None:
    """The curves (CSV for `dvc plots`, PNG for the report) and the solved examples; sets `out.figures`."""
    d, T, xs = p.data, p.model.train_iters, p.eval.extrapolation_size
    acc, iters = m.acc, iteration_counts(p)
    # fixed role columns (train / extrapolation / largest size) for `dvc plots`, whatever the test sizes,
    # then one column per size
    roles = [d.train_size, xs, max(d.test_sizes)]
    write_csv(
        plot_dir / "acc_vs_iters.csv",
        ["iters", "train_size", "extrapolation_size", "largest_size", *[f"size_{s}" for s in d.test_sizes]],
        [[k, *[acc[s][k] for s in roles], *[acc[s][k] for s in d.test_sizes]] for k in iters],
    )
    line_plot(
        plot_dir / "acc_vs_iters.png",
        iters,
        {f"size {s}": [acc[s][k] for k in iters] for s in d.test_sizes},
        "test-time iterations",
        "exact match",
        f"recurrent net trained on size {d.train_size} with {T} iterations",
        vline=T,
        vlabel="trained",
    )
    write_csv(
        plot_dir / "acc_vs_size.csv",
        ["size", "at_train_iters", "best"],
        [[s, acc[s][T], max(acc[s].values())] for s in d.test_sizes],
    )
    line_plot(
        plot_dir / "acc_vs_size.png",
        d.test_sizes,
        {
            f"{T} iterations (trained)": [acc[s][T] for s in d.test_sizes],
            "best test iterations": [max(acc[s].values()) for s in d.test_sizes],
        },
        "maze size",
        "exact match",
        "extrapolation to larger mazes",
    )
    write_csv(plot_dir / "train_loss.csv", ["epoch", "loss"], [[r["epoch"], r["loss"]] for r in m.history])
    out.figures = [
        {"path": f"{rel}/acc_vs_iters.png", "caption": "Exact match vs test-time iterations"},
        {"path": f"{rel}/acc_vs_size.png", "caption": "Exact match vs maze size"},
    ]
    if m.examples is not None:
        codes, targets, preds, k_best = m.examples
        big = max(d.test_sizes)
        plots.examples(plot_dir / "examples.png", codes, targets, np.asarray(preds), f"size {big}, {k_best} iterations")
        out.figures.append(
            {"path": f"{rel}/examples.png", "caption": f"Size-{big} mazes solved at {k_best} iterations"}
        )
