"""Figure of the augmentation study: clean accuracy vs attack success per defense, one panel per attack."""

from __future__ import annotations

from tenfold.core.plotting import plt, save


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
