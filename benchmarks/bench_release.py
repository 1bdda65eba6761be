"""Online release throughput (images/s) on 28x28 digits with a fixed surrogate; run on demand:

    python benchmarks/bench_release.py [--service models/secure_release/release_service.pt] [--images 400]
        [--batch-sizes 1 8 32] [--steps N] [--threads 1]

Uses the release service saved by the secure_release study when present (its surrogate, budget and steps),
else trains a surrogate for one epoch on 1,000 digits. The issue's target is >= 50 images/s on 2 cores. The
load average before and after is printed: the number means little on a busy machine. Measured on a quiet
machine (load ~1, 1 torch thread, saved service, 20 steps): 15 images/s one item per call, 53 at 8, 71 at 32,
82 at 64. The folder watcher and `tenfold release` coalesce new files into calls of up to 32 items.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tenfold.components.data.images import load  # noqa: E402
from tenfold.components.perturb.models import build  # noqa: E402
from tenfold.components.perturb.train import fit  # noqa: E402
from tenfold.studies.secure_release.poison import target_gradient  # noqa: E402
from tenfold.studies.secure_release.service import ReleaseService  # noqa: E402


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--service", default="models/secure_release/release_service.pt")
    ap.add_argument("--images", type=int, default=400)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--steps", type=int, default=None, help="override the service's PGD steps")
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads; tiny batches run faster on one thread, more thrash on a loaded machine",
    )
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    d = load("mnist5k", seed=0)
    x, y = torch.from_numpy(d.x_train[: args.images]), torch.from_numpy(d.y_train[: args.images])
    if Path(args.service).exists():
        svc = ReleaseService.load(args.service)
        source = args.service
    else:
        torch.manual_seed(0)
        model = build("cnn", 1, 10, 28)
        fit(model, x[:1000], y[:1000], 1, 0.05, 128, 0)
        svc = ReleaseService(model, target_gradient(model, x, y), 64 / 255, 20, 6.4 / 255, True)
        source = "fresh surrogate (1 epoch)"
    if args.steps:
        svc.steps = args.steps
    out = {
        "service": source,
        "steps": svc.steps,
        "threads": args.threads,
        "images": len(x),
        "load_average_before": round(os.getloadavg()[0], 2),
        "images_per_second": {},
    }
    for bs in args.batch_sizes:
        svc.protected, svc.seconds = 0, 0.0
        t0 = time.perf_counter()
        svc.protect_stream(x, y, bs)
        out["images_per_second"][bs] = round(len(x) / (time.perf_counter() - t0), 1)
        print(f"batch {bs:>3}: {out['images_per_second'][bs]:8.1f} images/s ({svc.steps} PGD steps)", flush=True)
    out["load_average_after"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
