"""Figures of the LowKey study: before/after examples and rank-1 bars (clean vs filtered)."""

from __future__ import annotations

import numpy as np

from tenfold.core.plotting import plt, save


def examples(path, clean: np.ndarray, filtered: np.ndarray, ssims: np.ndarray) -> None:
    """Rows: original, filtered, amplified difference (x5 around grey)."""
    n = len(clean)
    fig, axes = plt.subplots(3, n, figsize=(1.6 * n, 6), squeeze=False)
    diff = np.clip(127.5 + 5 * (filtered.astype(np.float32) - clean.astype(np.float32)), 0, 255).astype(np.uint8)
    for j in range(n):
        for i, (img, label) in enumerate(
            ((clean[j], "original"), (filtered[j], f"LowKey SSIM {ssims[j]:.2f}"), (diff[j], "difference x5"))
        ):
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


def tradeoff(
    path,
    ssim: list[float],
    dlib_rank1: list[float],
    heldout_rank1: list[float],
    labels: list[str],
    target_ssim: float,
    target_rank1: float,
    default_index: int | None = None,
) -> None:
    """dlib (and held-out model) rank-1 on filtered probes vs mean SSIM, one point per attack setting."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.scatter(ssim, dlib_rank1, label="dlib (third party)", zorder=3)
    ax.scatter(ssim, heldout_rank1, marker="x", label="held-out surrogate", zorder=3)
    for x, y, t in zip(ssim, dlib_rank1, labels):
        ax.annotate(t, (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
    if default_index is not None:
        ax.scatter(
            [ssim[default_index]],
            [dlib_rank1[default_index]],
            s=160,
            facecolors="none",
            edgecolors="k",
            label="default",
            zorder=4,
        )
    ax.axvline(target_ssim, color="g", ls="--", lw=1, label=f"target SSIM >= {target_ssim}")
    ax.axhline(target_rank1, color="r", ls="--", lw=1, label=f"target rank-1 <= {target_rank1}")
    ax.set_xlabel("mean SSIM, filtered vs original")
    ax.set_ylabel("rank-1 on filtered probes")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("LowKey trade-off: identification vs visibility")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    save(fig, path)


def best_points(ssim: list[float], dlib_rank1: list[float], target_ssim: float) -> dict:
    """Indices of the operating points to report: the lowest dlib rank-1 among points with SSIM >= target
    (None if no point reaches it), and the point with the lowest dlib rank-1 overall (ties: higher SSIM)."""
    ok = [i for i, s in enumerate(ssim) if s >= target_ssim]
    meets = min(ok, key=lambda i: (dlib_rank1[i], -ssim[i])) if ok else None
    lowest = min(range(len(ssim)), key=lambda i: (dlib_rank1[i], -ssim[i])) if ssim else None
    return {"meets_ssim": meets, "lowest_rank1": lowest}
