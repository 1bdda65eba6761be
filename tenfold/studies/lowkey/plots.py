"""Figures of the LowKey study: before/after examples, rank-1 bars (clean vs filtered), the trade-off curve."""

from __future__ import annotations

import numpy as np

from tenfold.core.plotting import plt, save


def examples(
    path,
    clean: np.ndarray,
    first: np.ndarray,
    subtle: np.ndarray,
    ssim_first: np.ndarray,
    ssim_subtle: np.ndarray,
    steps: tuple[int, int],
) -> None:
    """Rows: original, subtle point, first point, first point's difference x5 around grey."""
    n = len(clean)
    fig, axes = plt.subplots(4, n, figsize=(2.2 * n, 9), squeeze=False)
    diff = np.clip(127.5 + 5 * (first.astype(np.float32) - clean.astype(np.float32)), 0, 255).astype(np.uint8)
    for j in range(n):
        cells = (
            (clean[j], "original"),
            (subtle[j], f"{steps[1]} steps, face SSIM {ssim_subtle[j]:.2f}"),
            (first[j], f"{steps[0]} steps, face SSIM {ssim_first[j]:.2f}"),
            (diff[j], "difference x5"),
        )
        for i, (img, label) in enumerate(cells):
            axes[i, j].imshow(img)
            axes[i, j].set_xticks([])
            axes[i, j].set_yticks([])
            axes[i, j].set_title(label, fontsize=7)
    save(fig, path)


def rank_bars(path, names: list[str], clean: list[float], first: list[float], subtle: list[float], title: str) -> None:
    fig, ax = plt.subplots(figsize=(8, 4))
    x = np.arange(len(names))
    ax.bar(x - 0.27, clean, 0.27, label="clean probes")
    ax.bar(x, subtle, 0.27, label="LowKey, subtle point")
    ax.bar(x + 0.27, first, 0.27, label="LowKey, first point")
    ax.set_xticks(x, names, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("rank-1 identification")
    ax.set_ylim(0, 1.05)
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    save(fig, path)


def tradeoff(
    path, rows: list[list], columns: list[str], targets: list[tuple[float, float]], marks: dict[str, int]
) -> None:
    """dlib rank-1 (and the held-out model's) vs mean face SSIM: one line per run through its step counts;
    the target boxes (SSIM >= s and rank-1 <= r) shaded; the default run's operating points circled."""
    col = {c: i for i, c in enumerate(columns)}
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for k, setting in enumerate(dict.fromkeys(r[col["setting"]] for r in rows)):
        rs = sorted((r for r in rows if r[col["setting"]] == setting), key=lambda r: r[col["n_iters"]])
        x = [r[col["face_ssim"]] for r in rs]
        ax.plot(
            x,
            [r[col["dlib_rank1"]] for r in rs],
            "o-",
            color=f"C{k}",
            label=f"dlib, {setting} ({rs[0][col['probes']]} probes)",
        )
        ax.plot(x, [r[col["heldout_rank1"]] for r in rs], "x--", color=f"C{k}", alpha=0.6, label=f"held-out, {setting}")
        for r in rs:
            ax.annotate(
                str(r[col["n_iters"]]),
                (r[col["face_ssim"]], r[col["dlib_rank1"]]),
                fontsize=6,
                xytext=(3, 3),
                textcoords="offset points",
            )
        if k == 0:
            for j, (name, steps) in enumerate(marks.items()):
                hit = [r for r in rs if r[col["n_iters"]] == steps]
                if hit:
                    ax.scatter(
                        [hit[0][col["face_ssim"]]],
                        [hit[0][col["dlib_rank1"]]],
                        s=180,
                        facecolors="none",
                        edgecolors="k",
                        zorder=4,
                    )
                    ax.annotate(
                        f"{name} ({steps} steps)",
                        (hit[0][col["face_ssim"]], hit[0][col["dlib_rank1"]]),
                        fontsize=7,
                        xytext=(-20, -14 - 10 * j),
                        textcoords="offset points",
                    )
    for s, r in targets:
        ax.fill_between([s, 1.0], -0.02, r, color="g", alpha=0.08)
        ax.plot([s, s, 1.0], [-0.02, r, r], "g--", lw=0.8)
    ax.set_xlabel("mean face-region SSIM, filtered vs original")
    ax.set_ylabel("rank-1 on filtered probes")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("LowKey trade-off: identification vs visibility (green: the claims' regions)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, loc="upper left")
    save(fig, path)
