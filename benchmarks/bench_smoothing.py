"""Certificates per second: `Smooth.certify` (batched sampling under inference_mode, blocked distance matrix)
against a straightforward one-sample-at-a-time loop
(`tenfold.studies.smoothing.reference.certify_loop`), with the same n,
the same seeds and the same noise, checking that both give the same numbers. Run on demand:

    python benchmarks/bench_smoothing.py [--inputs 3] [--n-pred 1000] [--n-cert 1000] [--threads 1]

The base function is the study's conv autoencoder (CPU-profile widths, untrained weights: speed does not depend
on the weights). n_pred = 1000 with Delta = 0.1 leaves the abstain test a margin (Delta_1 = 0.055).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tenfold.components.data.images import load  # noqa: E402
from tenfold.core.seeds import seeded  # noqa: E402
from tenfold.studies.smoothing.models import ConvAutoencoder  # noqa: E402
from tenfold.studies.smoothing.reference import certify_loop  # noqa: E402
from tenfold.studies.smoothing.smooth import Smooth  # noqa: E402


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--inputs", type=int, default=3)
    ap.add_argument("--n-pred", type=int, default=1000)
    ap.add_argument("--n-cert", type=int, default=1000)
    ap.add_argument("--sigma", type=float, default=0.25)
    ap.add_argument("--delta", type=float, default=0.1)
    ap.add_argument("--batch-size", type=int, default=500)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    model = seeded(0, lambda: ConvAutoencoder((1, 28, 28), 32, (8, 16, 32))).eval()
    smooth = Smooth(
        model, "l2", args.sigma, n_pred=args.n_pred, n_cert=args.n_cert, delta=args.delta, batch_size=args.batch_size
    )
    xs = torch.from_numpy(load("mnist5k").x_test[: args.inputs])
    eps = [0.05, 0.1, 0.2]

    t0 = time.perf_counter()
    fast = [smooth.certify(x, eps, seed=i) for i, x in enumerate(xs)]
    t_fast = time.perf_counter() - t0
    t0 = time.perf_counter()
    slow = [certify_loop(smooth, x, eps, seed=i) for i, x in enumerate(xs)]
    t_slow = time.perf_counter() - t0

    same_abstain = all(a.abstained == b.abstained for a, b in zip(fast, slow))
    diffs = [
        abs(a.eps_out[e] - b.eps_out[e]) / max(abs(b.eps_out[e]), 1e-12)
        for a, b in zip(fast, slow)
        for e in eps
        if a.eps_out[e] is not None and b.eps_out[e] is not None
    ]
    out = {
        "inputs": len(xs),
        "certified": sum(not c.abstained for c in fast),
        "n_pred": args.n_pred,
        "n_cert": args.n_cert,
        "threads": args.threads,
        "batched_cert_per_s": len(xs) / t_fast,
        "loop_cert_per_s": len(xs) / t_slow,
        "speedup": t_slow / t_fast,
        "same_abstain": same_abstain,
        "max_rel_diff_eps_out": max(diffs) if diffs else None,
    }
    print(
        f"batched: {out['batched_cert_per_s']:.3f} cert/s ({t_fast:.1f}s)   one-at-a-time loop: "
        f"{out['loop_cert_per_s']:.3f} cert/s ({t_slow:.1f}s)   ratio {out['speedup']:.1f}x"
    )
    print(
        f"certified {out['certified']} of {len(xs)}; same abstain decisions: {same_abstain}; "
        f"max relative eps_out difference: {out['max_rel_diff_eps_out']}"
    )
    return out


if __name__ == "__main__":
    main()
