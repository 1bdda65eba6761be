"""Figures of the security benchmark: the attack x defense heat map."""

from __future__ import annotations

import numpy as np

from tenfold.core.plotting import plt, save


def heatmap(path, attacks: list[str], defenses: list[str], values: dict[tuple[str, str], float | None], title: str):
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
