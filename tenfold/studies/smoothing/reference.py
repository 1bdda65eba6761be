"""A straightforward one-sample-at-a-time implementation of `Smooth.certify`, the baseline of the benchmark and
the oracle of the tests.

It draws exactly the same noise as `Smooth` (the same generator calls, in the same order) but runs the base function
on one noisy input at a time, finds the center with one row of distances per sample (the official code's loop), and
measures the certificate distances one sample at a time. Same n, same seed: the same numbers up to float rounding.
"""

from __future__ import annotations

import torch

from tenfold.studies.smoothing.smooth import Certificate, Smooth


def _one_at_a_time(smooth: Smooth, x: torch.Tensor, n: int, gen: torch.Generator) -> list[torch.Tensor]:
    outs = []
    with torch.inference_mode():
        for xb in smooth.noise_batches(x, n, gen):
            outs.extend(smooth._forward(xb[i : i + 1])[0] for i in range(xb.shape[0]))
    return outs


def certify_loop(smooth: Smooth, x: torch.Tensor, eps_in: list[float], seed: int = 0) -> Certificate:
    """`smooth.certify(x, eps_in, seed)` computed one sample at a time (non-high-dimensional variant)."""
    if smooth.output_is_hd:
        raise ValueError("the reference loop covers the standard (n_pred x n_pred) center only")
    gen = torch.Generator(device=x.device).manual_seed(int(seed))
    samples = _one_at_a_time(smooth, x, smooth.n_pred, gen)
    dist = smooth._dist
    stacked = torch.stack(samples)
    best, radius = None, float("inf")
    for z in samples:  # one row of the distance matrix at a time
        med = float(dist(stacked, z.unsqueeze(0)).median())
        if med < radius:
            best, radius = z, med
    fresh = _one_at_a_time(smooth, x, smooth.n_pred, gen)
    p_hat = sum(float(dist(z, best)) <= radius for z in fresh) / smooth.n_pred
    ok, d1, d2 = smooth.abstain_test(p_hat)
    cert = Certificate(
        abstained=not ok,
        radius=radius,
        p_hat=p_hat,
        delta_1=d1,
        delta_2=d2,
        eps_out={e: None for e in eps_in},
        quantile={e: smooth.quantile_level(e) for e in eps_in},
    )
    if not ok:
        return cert
    with torch.inference_mode():
        clean = smooth._forward(x.unsqueeze(0))[0]
    cert.center, cert.smoothing_error = best, float(dist(best, clean))
    dists = torch.tensor([float(dist(z, best)) for z in _one_at_a_time(smooth, x, smooth.n_cert, gen)])
    for e in eps_in:
        if cert.quantile[e] is not None:
            cert.eps_out[e] = smooth.radius_coeff * smooth.order_statistic(dists, cert.quantile[e])
    return cert
