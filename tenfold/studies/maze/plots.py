"""Figures of the maze study."""

from __future__ import annotations

import numpy as np

from tenfold.core.plotting import plt, save
from tenfold.studies.maze.generate import to_rgb


def examples(path, codes: np.ndarray, targets: np.ndarray, preds: np.ndarray, title: str):
    """Rows of (maze, true path, predicted path); a red frame marks a wrong prediction."""
    n = len(codes)
    fig, axes = plt.subplots(n, 3, figsize=(6, 2 * n), squeeze=False)
    rgb = to_rgb(codes).transpose(0, 2, 3, 1)
    for i in range(n):
        ok = bool((preds[i] == targets[i]).all())
        for j, (img, name) in enumerate([(rgb[i], "maze"), (targets[i], "path"), (preds[i], "predicted")]):
            ax = axes[i, j]
            ax.imshow(img, cmap="gray" if img.ndim == 2 else None, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(name)
            if j == 2:
                for s in ax.spines.values():
                    s.set_edgecolor("green" if ok else "red")
                    s.set_linewidth(3)
    fig.suptitle(title)
    return save(fig, path)
