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


def epochs_curve(path, rows: list[list], target: float):
    """Gradient matching vs the victim's epochs: success rate (left axis, with the claim's target) and the mean
    log-probability of the adversarial class (right axis); `rows` = [epoch, success, mean_adv_logp, targets]."""
    ep = [r[0] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(ep, [r[1] for r in rows], "o-", label="success (fraction of targets)")
    ax.axhline(target, ls="--", c="grey", label=f"claim target {target:g}")
    ax.set_xlabel("victim training epoch")
    ax.set_ylabel("success")
    ax.set_ylim(-0.02, 1.02)
    ax2 = ax.twinx()
    ax2.plot(ep, [r[2] for r in rows], "s:", c="tab:red", label="mean log p(adversarial)")
    ax2.set_ylabel("mean log p(adversarial class)")
    fig.legend(loc="upper right", fontsize=7)
    ax.set_title("gradient matching vs victim epochs")
    return save(fig, path)
