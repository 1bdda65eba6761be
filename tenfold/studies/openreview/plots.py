"""The study's figures (PNG via matplotlib, written atomically through tenfold.core.plotting.save)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tenfold.core.plotting import plt, save


def rating_histograms(path, reviews: pd.DataFrame, paper_df: pd.DataFrame, years: list[int]):
    """Histogram of paper mean ratings by decision (accepted / not), one panel per year."""
    fig, axes = plt.subplots(1, len(years), figsize=(3.2 * len(years), 3), squeeze=False)
    for ax, y in zip(axes[0], years):
        d = paper_df[paper_df.year == y]
        bins = np.arange(np.floor(d.mean_rating.min()), np.ceil(d.mean_rating.max()) + 0.5, 0.5)
        for acc, label, color in ((0, "not accepted", "tab:red"), (1, "accepted", "tab:green")):
            ax.hist(d[d.accepted == acc].mean_rating, bins=bins, alpha=0.6, label=label, color=color)
        ax.set_title(f"ICLR {y}")
        ax.set_xlabel("mean rating")
    axes[0][0].set_ylabel("papers")
    axes[0][0].legend(fontsize=7)
    return save(fig, path)


def flip_probabilities(path, repro: dict[int, dict], counts: dict[int, dict] | None, count_year: int | None):
    """P(decision flips) = 1 - reproducibility per year (median, 2.5-97.5 %), and vs reviewers per paper."""
    ncols = 2 if counts else 1
    fig, axes = plt.subplots(1, ncols, figsize=(5 * ncols, 3.5), squeeze=False)
    ys = sorted(repro)
    med = np.array([1 - repro[y]["median"] for y in ys])
    lo = np.array([1 - repro[y]["q97_5"] for y in ys])
    hi = np.array([1 - repro[y]["q2_5"] for y in ys])
    ax = axes[0][0]
    ax.errorbar(ys, med, yerr=[med - lo, hi - med], marker="o", capsize=3)
    ax.set_xticks(ys)
    ax.set_xlabel("year")
    ax.set_ylabel("P(accepted paper rejected on re-review)")
    ax.grid(alpha=0.3)
    if counts:
        ns = sorted(counts)
        ax = axes[0][1]
        ax.plot(ns, [1 - counts[n]["median"] for n in ns], marker="o")
        ax.set_xlabel(f"reviewers per paper (ICLR {count_year})")
        ax.set_ylabel("flip probability")
        ax.grid(alpha=0.3)
    return save(fig, path)


def calibration(path, paper_df: pd.DataFrame, fits: dict[int, tuple[float, float]]):
    """Observed acceptance rate per half-point mean-rating bin vs the fitted logistic curve, per year."""
    fig, ax = plt.subplots(figsize=(6, 4))
    grid = np.linspace(paper_df.mean_rating.min(), paper_df.mean_rating.max(), 200)
    for i, (y, (b0, b1)) in enumerate(sorted(fits.items())):
        d = paper_df[paper_df.year == y]
        b = np.round(d.mean_rating * 2) / 2
        obs = d.groupby(b).accepted.agg(["mean", "size"])
        color = f"C{i}"
        ax.scatter(obs.index, obs["mean"], s=np.sqrt(obs["size"]) * 4, color=color, alpha=0.7)
        ax.plot(grid, 1 / (1 + np.exp(-(b0 + b1 * grid))), color=color, label=str(y))
    ax.set_xlabel("mean rating")
    ax.set_ylabel("acceptance rate")
    ax.set_title("calibration: observed (dots, size ~ papers) vs logistic fit")
    ax.grid(alpha=0.3)
    ax.legend()
    return save(fig, path)


def citations_vs_rating(path, df: pd.DataFrame):
    """Citations (log scale) vs mean rating, coloured by decision, one panel per year present."""
    years = sorted(df.year.unique())
    fig, axes = plt.subplots(1, len(years), figsize=(4.5 * len(years), 3.5), squeeze=False)
    for ax, y in zip(axes[0], years):
        d = df[df.year == y]
        for acc, label, color in ((0, "not accepted", "tab:red"), (1, "accepted", "tab:green")):
            s = d[d.accepted == acc]
            ax.scatter(s.mean_rating, s.citations + 1, s=6, alpha=0.5, label=label, color=color)
        ax.set_yscale("log")
        ax.set_title(f"ICLR {y}")
        ax.set_xlabel("mean rating")
        ax.set_ylabel("citations + 1")
    axes[0][0].legend(fontsize=7)
    return save(fig, path)
