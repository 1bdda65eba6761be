"""Figures of the LowKey study: before/after examples and rank-1 bars (clean vs filtered)."""
from __future__ import annotations

import numpy as np

from ..plotting import plt, save


def examples(path, clean: np.ndarray, filtered: np.ndarray, ssims: np.ndarray) -> None:
    """Rows: original, filtered, amplified difference (x5 around grey)."""
    n = len(clean)
    fig, axes = plt.subplots(3, n, figsize=(1.6 * n, 6), squeeze=False)
    diff = np.clip(127.5 + 5 * (filtered.astype(np.float32) - clean.astype(np.float32)), 0, 255).astype(np.uint8)
    for j in range(n):
        for i, (img, label) in enumerate(((clean[j], "original"), (filtered[j], f"LowKey SSIM {ssims[j]:.2f}"),
                                          (diff[j], "difference x5"))):
            axes[i, j].imshow(img)
            axes[i, j].set_xticks([])
            axes[i, j].set_yticks([])
            if j == 0 or i == 1:
                axes[i, j].set_title(label, fontsize=7)
    save(fig, path)


def rank_bars(path, names: list[str], clean: list[float], filtered: list[float], title: str) -> None:
    fig, ax = plt.subplots(figsize=(7, 3.8))
    x = np.arange(len(names))
    ax.bar(x - 0.2, clean, 0.4, label="clean probes")
    ax.bar(x + 0.2, filtered, 0.4, label="LowKey probes")
    ax.set_xticks(x, names, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("rank-1 accuracy")
    ax.set_ylim(0, 1.05)
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3, axis="y")
    save(fig, path)
