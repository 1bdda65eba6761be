"""The study's protocol around `Smooth`: certify a set of inputs over a grid of eps_in and summarise it as the
official `get_median_cert.py` does (median eps_out and median smoothing error over the inputs that were not
abstained on), plus the abstain rate and the share of inputs with a certificate."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

import torch

from tenfold.core.seeds import seed_for
from tenfold.studies.smoothing.smooth import Certificate, Smooth


def input_seed(seed: int, i: int) -> int:
    """The noise seed of the i-th input certified with `seed` (the same for every sigma, distance and batch-norm
    mode, so those runs compare on common noise)."""
    return seed_for(seed, "smoothing", "input", i)


def certify_inputs(
    smooth: Smooth, inputs: torch.Tensor, eps_in: Sequence[float], seed: int, scale: float = 1.0
) -> list[Certificate]:
    """Certify each input for every eps_in, input i with the noise of `input_seed(seed, i)`; `scale` converts
    eps_in to the input's units (e.g. 255 for faces in [0, 255]) and the returned certificates are keyed by the
    unscaled eps_in."""
    certs = []
    for i, x in enumerate(inputs):
        c = smooth.certify(x, [e * scale for e in eps_in], seed=input_seed(seed, i))
        c.eps_out = {e: c.eps_out[e * scale] for e in eps_in}
        c.quantile = {e: c.quantile[e * scale] for e in eps_in}
        certs.append(c)
    return certs


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def summarize(certs: list[Certificate], eps_in: Sequence[float]) -> list[dict]:
    """One row per eps_in: inputs, abstain rate, certified share, median eps_out and smoothing error (over the
    certified inputs), median center radius r and median p_hat."""
    n = len(certs)
    kept = [c for c in certs if not c.abstained]
    rows = []
    for e in eps_in:
        ok = [c for c in kept if c.eps_out.get(e) is not None]
        q = next((c.quantile[e] for c in certs if e in c.quantile), None)
        rows.append(
            {
                "eps_in": e,
                "inputs": n,
                "abstain_rate": (n - len(kept)) / n if n else None,
                "certified": len(ok) / n if n else None,
                "quantile": q,
                "median_eps_out": _median([c.eps_out[e] for c in ok]),
                "median_smoothing_error": _median([c.smoothing_error for c in ok]),
                "median_radius": _median([c.radius for c in kept]),
                "median_p_hat": _median([c.p_hat for c in certs]),
            }
        )
    return rows


def per_input(certs: list[Certificate], eps_in: Sequence[float]) -> list[dict]:
    """One row per input (for the CSV artifacts): abstained, r, p_hat, smoothing error, eps_out per eps_in."""
    return [
        {
            "input": i,
            "abstained": c.abstained,
            "radius": c.radius,
            "p_hat": c.p_hat,
            "smoothing_error": c.smoothing_error,
            **{f"eps_out@{e:g}": c.eps_out.get(e) for e in eps_in},
        }
        for i, c in enumerate(certs)
    ]
