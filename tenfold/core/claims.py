"""The metrics contract: every study's `metrics/<slug>.json` carries a list of claims whose `holds` is computed."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": lambda m, t: m >= t,
    ">": lambda m, t: m > t,
    "<=": lambda m, t: m <= t,
    "<": lambda m, t: m < t,
}


def within(tol: float) -> str:
    """The comparison of a claim that holds when the measurement is within `tol` of the target (either side)."""
    return f"within {tol:g} of"


def _tolerance(op: str) -> float | None:
    parts = op.split()
    if len(parts) == 3 and parts[0] == "within" and parts[2] == "of":
        return float(parts[1])
    return None


@dataclass(frozen=True)
class Claim:
    id: str
    claim: str
    paper: Any
    measured: float | None
    target: float | None
    holds: bool
    comparison: str = ">="
    note: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def claim(
    id: str,
    text: str,
    paper: Any,
    measured,
    target: float | None,
    op: str = ">=",
    holds: bool | None = None,
    note: str = "",
) -> Claim:
    """Build a claim; `holds` is computed as `measured <op> target` unless a computed boolean is given.

    A missing or NaN measurement never holds. `holds` given explicitly must itself be computed from
    measurements (e.g. a conjunction of two comparisons), never a literal.
    """
    tol = _tolerance(op)
    if op not in _OPS and tol is None and holds is None:
        raise ValueError(f"unknown comparison {op!r}")
    m = None if measured is None else float(measured)
    if m is not None and math.isnan(m):
        m = None
    if holds is None:
        ok = (lambda a, b: abs(a - b) <= tol) if tol is not None else _OPS[op]
        holds = m is not None and target is not None and ok(m, float(target))
    elif m is None:
        holds = False
    return Claim(
        id=id,
        claim=text,
        paper=paper,
        measured=None if m is None else round(m, 6),
        target=target,
        holds=bool(holds),
        comparison=op,
        note=note,
    )


def spread_verdict(c: dict, spread: dict | None) -> tuple[str, bool]:
    """The seed spread of a claim's measurement (from benchmarks/seed_spread.json: values over >= 3 seeds) as a
    table cell, and whether the claim's margin to its target is smaller than that spread (then its `holds` could
    flip with the seed or the CPU)."""
    if not spread or len(spread.get("values", [])) < 2:
        return "", False
    lo, hi = min(spread["values"]), max(spread["values"])
    n = len(spread["values"])
    held = spread.get("holds")
    cell = f"{lo:.3g} to {hi:.3g} ({n} seeds" + (f", held in {sum(map(bool, held))})" if held else ")")
    if c.get("measured") is None or c.get("target") is None:
        return cell, False
    gap = abs(float(c["measured"]) - float(c["target"]))
    tol = _tolerance(c.get("comparison", ""))
    margin = gap if tol is None else abs(tol - gap)  # a tolerance claim flips at the edge of its band
    return cell, margin < (hi - lo)


def claims_table(claims: list[dict], spreads: dict | None = None) -> str:
    """Markdown table 'paper claims / this run measured' (with the seed spread when `spreads` is given)."""
    spreads = spreads or {}
    if not spreads:
        rows = ["| id | claim | paper | this run measured | target | holds |", "|---|---|---|---|---|---|"]
    else:
        rows = [
            "| id | claim | paper | this run measured | seed spread | target | holds |",
            "|---|---|---|---|---|---|---|",
        ]
    for c in claims:
        tgt = "" if c.get("target") is None else f"{c.get('comparison', '>=')} {c['target']}"
        meas = "n/a" if c.get("measured") is None else f"{c['measured']:.4g}"
        mark = "yes" if c["holds"] else "**no**"
        if not spreads:
            rows.append(f"| `{c['id']}` | {c['claim']} | {c['paper']} | {meas} | {tgt} | {mark} |")
            continue
        cell, fragile = spread_verdict(c, spreads.get(c["id"]))
        if fragile:
            mark += " (margin < seed spread)"
        rows.append(f"| `{c['id']}` | {c['claim']} | {c['paper']} | {meas} | {cell} | {tgt} | {mark} |")
    return "\n".join(rows)
