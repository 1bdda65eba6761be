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


def meets(comparison: str, measured, target) -> bool:
    """Whether `measured <comparison> target` for the plain operators (>=, >, <=, <); False for a missing value or
    another comparison."""
    op = _OPS.get(comparison)
    return op is not None and measured is not None and target is not None and bool(op(measured, target))


def within(tol: float) -> str:
    """The comparison of a claim that holds when the measurement is within `tol` of the target (either side)."""
    return f"within {tol:g} of"


def tolerance_of(op: str) -> float | None:
    """The band of a `within X of` comparison (see `within`); None for the plain operators."""
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
    tol = tolerance_of(op)
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
