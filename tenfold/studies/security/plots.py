"""Figures of the security benchmark (attack x defense heat map) and the augmentation study (accuracy vs success)."""
from __future__ import annotations

import numpy as np

from tenfold.core.plotting import plt, save


def heatmap(path, attacks: list[str], defenses: list[str], values: dict[tuple[str, str], float | None],
            title: str):
    """Attack success per (attack, defense); blank where a cell was not run or has no success metric."""
    grid = np.full((len(attacks), len(defenses)), np.nan)
    for i, a in enumerate(attacks):
        for j, d in enumerate(defenses):
            v = values.get((a, d))
            if v is not None:
                grid[i, j] = v
    fig, ax = plt.subplots(figsize=(1.2 * len(defenses) + 3, 0.55 * len(attacks) + 1.8))
    im = ax.imshow(grid, cmap="Reds", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(defenses)), defenses, rotation=35, ha="right")
    ax.set_yticks(range(len(attacks)), attacks)
    for i in range(len(attacks)):
        for j in range(len(defenses)):
            if not np.isnan(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=8)
    fig.colorbar(im, ax=ax, label="attack success")
    ax.set_title(title)
    return save(fig, path)


def acc_vs_success(path, points: dict[str, dict[str, tuple[float, float]]], title: str):
    """One panel per attack: a labelled point (attack success, clean accuracy) per defense."""
    fig, axes = plt.subplots(1, len(points), figsize=(4.5 * len(points), 4), squeeze=False)
    for ax, (attack, by_def) in zip(axes[0], points.items()):
        for d, (succ, acc) in by_def.items():
            ax.scatter(succ, acc)
            ax.annotate(d, (succ, acc), fontsize=8, xytext=(3, 3), textcoords="offset points")
        ax.set_xlabel("attack success")
        ax.set_ylabel("clean validation accuracy")
        ax.set_title(attack)
        ax.set_xlim(-0.05, 1.05)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    return save(fig, path)
