"""Matplotlib helpers (Agg backend, atomic PNG writes) and CSV files for `dvc plots`."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from tenfold.core.runtime import atomic_savefig, atomic_write_text  # noqa: E402


def save(fig, path) -> Path:
    fig.tight_layout()
    p = atomic_savefig(fig, path, dpi=110)
    plt.close(fig)
    return p


def write_csv(path, columns: list[str], rows: list[list]) -> Path:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    w.writerows(rows)
    return atomic_write_text(path, buf.getvalue())


def line_plot(
    path,
    x,
    series: dict[str, list],
    xlabel: str,
    ylabel: str,
    title: str = "",
    vline: float | None = None,
    vlabel: str = "",
) -> Path:
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, ys in series.items():
        ax.plot(x, ys, marker="o", label=name)
    if vline is not None:
        ax.axvline(vline, color="grey", ls="--", lw=1, label=vlabel or None)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return save(fig, path)
