"""Group-fairness gaps computed by the project (cross-checked against fairlearn in the tests).

With prediction p (a probability for the relaxed, differentiable version; 0/1 for the reported metric),
label y and group s in {0, 1}:

    dp    demographic parity  |E[p | s=0] - E[p | s=1]|                     (fairlearn demographic_parity_difference)
    eopp  equal opportunity   |E[p | y=1, s=0] - E[p | y=1, s=1]|           (fairlearn equal_opportunity_difference)
    eo    equalized odds      max over y of |E[p | y, s=0] - E[p | y, s=1]|  (fairlearn equalized_odds_difference)

A conditioning cell with no sample contributes no difference (0), so mini-batches never produce NaN.
"""

from __future__ import annotations

import numpy as np
import torch

NOTION_NAMES = {"dp": "demographic parity", "eo": "equalized odds", "eopp": "equal opportunity"}


def _diff(p: torch.Tensor, s: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    a, b = mask & (s == 0), mask & (s == 1)
    if not a.any() or not b.any():
        return p.sum() * 0.0
    return (p[a].mean() - p[b].mean()).abs()


def gap(p: torch.Tensor, y: torch.Tensor, s: torch.Tensor, notion: str) -> torch.Tensor:
    """Fairness gap of predictions `p` (probabilities or 0/1); differentiable in `p`."""
    everyone = torch.ones_like(y, dtype=torch.bool)
    if notion == "dp":
        return _diff(p, s, everyone)
    if notion == "eopp":
        return _diff(p, s, y == 1)
    if notion == "eo":
        return torch.maximum(_diff(p, s, y == 1), _diff(p, s, y == 0))
    raise ValueError(f"unknown fairness notion {notion!r} (dp, eo, eopp)")


def report(pred: np.ndarray, y: np.ndarray, s: np.ndarray) -> dict[str, float]:
    """Accuracy, positive-prediction rate and the three gaps of hard predictions `pred` (0/1)."""
    p, yt, st = (torch.as_tensor(np.asarray(a)) for a in (pred, y, s))
    out = {"acc": float((p == yt).double().mean()), "pos": float(p.double().mean())}
    for notion in NOTION_NAMES:
        out[f"gap_{notion}"] = float(gap(p.double(), yt, st, notion))
    return out


def permutation_gaps(pred: np.ndarray, y: np.ndarray, s: np.ndarray, notion: str, n: int, seed: int) -> np.ndarray:
    """The `n` gaps of the same hard predictions under random relabellings of the group (group sizes kept): the
    gaps a perfectly group-blind classifier shows on a sample this size, i.e. the sampling-noise distribution of
    the gap. Vectorised over the relabellings; a cell left empty by a relabelling contributes 0, as in `gap`."""
    if notion not in NOTION_NAMES:
        raise ValueError(f"unknown fairness notion {notion!r} (dp, eo, eopp)")
    if n == 0:
        return np.empty(0)
    rng = np.random.default_rng(seed)
    p, y = np.asarray(pred, np.float64), np.asarray(y)
    perm = rng.permuted(np.tile(np.asarray(s, np.int8), (n, 1)), axis=1).astype(bool)  # (n, N): s == 1

    def diff(mask: np.ndarray) -> np.ndarray:
        g1 = perm[:, mask]
        n1 = g1.sum(1)
        n0 = mask.sum() - n1
        s1 = g1 @ p[mask]
        s0 = p[mask].sum() - s1
        with np.errstate(invalid="ignore", divide="ignore"):
            d = np.abs(s0 / n0 - s1 / n1)
        return np.where((n0 > 0) & (n1 > 0), d, 0.0)

    if notion == "dp":
        return diff(np.ones(len(p), bool))
    if notion == "eopp":
        return diff(y == 1)
    return np.maximum(diff(y == 1), diff(y == 0))


def noise_floor(
    pred: np.ndarray, y: np.ndarray, s: np.ndarray, notion: str, n: int, seed: int, quantile: float = 0.95
) -> tuple[float, float]:
    """(mean, `quantile`) of the permutation gaps: the noise floor and the gap that chance exceeds only with
    probability 1 - quantile."""
    g = permutation_gaps(pred, y, s, notion, n, seed)
    if not len(g):
        return float("nan"), float("nan")
    return float(g.mean()), float(np.quantile(g, quantile))


def permutation_floor(pred: np.ndarray, y: np.ndarray, s: np.ndarray, notion: str, n: int, seed: int) -> float:
    """Mean gap of the same predictions under random relabellings of the group (group sizes kept): the gap a
    perfectly group-blind classifier shows on a sample this small, i.e. the sampling-noise floor."""
    return noise_floor(pred, y, s, notion, n, seed)[0]
