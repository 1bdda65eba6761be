"""The gradinit study's bar charts of learned scales and its Post-LN learning-rate grid."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from tenfold.core.plotting import save


def image_scales(path: Path, scales: dict[str, dict[str, float]]) -> Path:
    """One panel per architecture: the GradInit scale of each weight tensor (`scales`: arch -> name -> scale)."""
    fig, axes = plt.subplots(len(scales), 1, figsize=(8, 2.8 * len(scales)), squeeze=False)
    for ax, (arch, all_scales) in zip(axes[:, 0], scales.items()):
        sc = {k: v for k, v in all_scales.items() if k.endswith("weight")}
        ax.bar(range(len(sc)), list(sc.values()))
        ax.axhline(1.0, color="grey", lw=1, ls="--")
        ax.set_xticks(range(len(sc)), [k.replace(".weight", "") for k in sc], rotation=90, fontsize=6)
        ax.set_ylabel("learned scale")
        ax.set_title(f"{arch}: GradInit scale of each weight tensor (1 = Kaiming)")
    return save(fig, path)


def transformer_scales(path: Path, scales: dict[str, float]) -> Path:
    fig, ax = plt.subplots(figsize=(10, 3.2))
    ax.bar(range(len(scales)), list(scales.values()))
    ax.axhline(1.0, color="grey", lw=1, ls="--")
    ax.set_xticks(range(len(scales)), list(scales), rotation=90, fontsize=5)
    ax.set_ylabel("learned scale")
    ax.set_title("Post-LN Transformer: GradInit scale of every tensor (1 = default init)")
    return save(fig, path)


def lr_grid(path: Path, lrs: list[float], accs: dict[str, list[float]], threshold: float, title: str) -> Path:
    fig, ax = plt.subplots(figsize=(6, 4))
    for init, ys in accs.items():
        ax.semilogx(lrs, ys, marker="o", label=init)
    ax.axhline(threshold, color="grey", ls="--", lw=1, label="'trains' threshold")
    ax.set_xlabel("Adam learning rate (no warmup)")
    ax.set_ylabel("test token accuracy")
    ax.set_title(title)
    ax.legend()
    return save(fig, path)
