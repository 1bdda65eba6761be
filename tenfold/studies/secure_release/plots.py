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


def diagnostics(
    path, arch: str, steps: list[list], curves: dict[str, list[float]], eps: list[list], methods: list[str]
) -> Path:
    """Up to three panels for the first victim arch: drop (points) vs alignment PGD steps; clean test accuracy vs
    victim epoch per training set; accuracy vs eps for the alignment release beside the baselines."""
    panels = [k for k, v in (("steps", steps), ("epochs", curves), ("eps", eps)) if v]
    if not panels:  # the file is a DVC output: it is written even when every diagnostic is switched off
        fig, ax = plt.subplots(figsize=(4.2, 1.2))
        ax.axis("off")
        ax.text(0.5, 0.5, "no diagnostics in this run\n(secure_release.diagnostics: all off)", ha="center", va="center")
        return save(fig, path)
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    for ax, kind in zip(axes[0], panels):
        if kind == "steps":
            ax.plot([r[0] for r in steps], [r[2] for r in steps], "o-")
            ax.set_xscale("log")
            ax.set_xlabel("alignment PGD steps")
            ax.set_ylabel(f"{arch} accuracy drop (points)")
            ax.axhline(0, color="grey", lw=0.5)
        elif kind == "epochs":
            for s, v in curves.items():
                pts = [(e, a) for e, a in enumerate(v, 1) if a is not None]  # a sampled curve skips epochs
                ax.plot(*zip(*pts), "o-", ms=2.5, label=s, lw=2.2 if s == "alignment" else 1.2)
            ax.set_xlabel("victim epoch")
            ax.set_ylabel(f"{arch} clean test accuracy")
            ax.legend(fontsize=6)
        else:
            for j, mth in enumerate(methods):
                ax.plot([r[0] for r in eps], [r[1 + j] for r in eps], "o-", label=mth)
            ax.set_xlabel("eps (/255)")
            ax.set_ylabel(f"{arch} clean test accuracy")
            ax.legend(fontsize=7)
    fig.tight_layout()
    return save(fig, path)
