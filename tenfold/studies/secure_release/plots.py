"""Figures of the secure_release study: victim accuracy bars and clean/released example images."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tenfold.core.plotting import plt, save


def examples(path, clean, released: dict, n: int = 6) -> Path:
    """One row per release (first row: clean), `n` images each."""
    cols = {"clean": clean[:n], **{k: v[:n] for k, v in released.items()}}
    fig, axes = plt.subplots(len(cols), n, figsize=(1.3 * n, 1.3 * len(cols)), squeeze=False)
    for r, (name, imgs) in enumerate(cols.items()):
        for c in range(n):
            ax = axes[r, c]
            if c >= len(imgs):
                ax.axis("off")
                continue
            img = imgs[c].cpu().numpy()
            ax.imshow(img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(name, fontsize=7)
    return save(fig, path)


def victim_bars(path, rows: list[list], archs: list[str], title: str) -> Path:
    """Grouped bars: one group per release (rows[i][0]), one bar per victim architecture."""
    fig, ax = plt.subplots(figsize=(7, 3.8))
    w = 0.8 / len(archs)
    for i, a in enumerate(archs):
        ax.bar(np.arange(len(rows)) + i * w, [r[1 + i] for r in rows], w, label=a)
    ax.set_xticks(np.arange(len(rows)) + 0.4 - w / 2, [r[0] for r in rows], rotation=20, fontsize=8)
    ax.set_ylabel("victim clean test accuracy")
    ax.set_title(title)
    ax.legend()
    return save(fig, path)
