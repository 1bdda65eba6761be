"""Figure of the augmentation study: clean accuracy vs attack success per defense, one panel per attack."""

from __future__ import annotations

from tenfold.core.plotting import plt, save


def acc_vs_success(path, points: dict[str, dict[str, tuple]], title: str):
    """One panel per attack: a labelled point (attack success, clean accuracy) per defense, with error bars when
    the tuple carries intervals (success, acc, success_lo, success_hi, acc_lo, acc_hi)."""
    fig, axes = plt.subplots(1, len(points), figsize=(4.5 * len(points), 4), squeeze=False)
    for ax, (attack, by_def) in zip(axes[0], points.items()):
        for d, pt in by_def.items():
            succ, acc = pt[0], pt[1]
            lo = pt[2:] if len(pt) == 6 else (None,) * 4
            xerr = None if None in lo[:2] else [[succ - lo[0]], [lo[1] - succ]]
            yerr = None if None in lo[2:] else [[acc - lo[2]], [lo[3] - acc]]
            ax.errorbar(succ, acc, xerr=xerr, yerr=yerr, fmt="o", capsize=2)
            ax.annotate(d, (succ, acc), fontsize=8, xytext=(3, 3), textcoords="offset points")
        ax.set_xlabel("attack success")
        ax.set_ylabel("clean validation accuracy")
        ax.set_title(attack)
        ax.set_xlim(-0.05, 1.05)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    return save(fig, path)
