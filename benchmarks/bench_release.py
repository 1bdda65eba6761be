"""Online release throughput (images/s) on 32x32 RGB CIFAR-10 images with a fixed surrogate; run on demand:

    python benchmarks/bench_release.py [--service models/secure_release/release_service.pt] [--images 200]
        [--batch-sizes 1 10 32] [--steps N] [--threads 1] [--data data/cifar10]

Uses the release service saved by the secure_release study when present (its surrogate, budget and steps),
else trains a cnn surrogate for one epoch on 1,000 CIFAR-10 images (the arrays of the build_cifar10 stage under
--data). Throughput does not depend on the pixel values, only on the image shape, the surrogate and the steps.
The load average before and after is printed, and the CPU time of the process: the wall-clock number means
little on a busy machine. The folder watcher and `tenfold release` coalesce new files into calls of up to 32.
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

from tenfold.components.data import cifar10  # noqa: E402
from tenfold.components.perturb.train import fit  # noqa: E402
from tenfold.studies.secure_release.evaluate import channel_stats  # noqa: E402
from tenfold.studies.secure_release.nets import build_net  # noqa: E402
from tenfold.studies.secure_release.poison import target_gradient  # noqa: E402
from tenfold.studies.secure_release.service import ReleaseService  # noqa: E402


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--service", default="models/secure_release/release_service.pt")
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 10, 32])
    ap.add_argument("--steps", type=int, default=None, help="override the service's PGD steps")
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads; tiny batches run faster on one thread, more thrash on a loaded machine",
    )
    ap.add_argument("--data", default="data/cifar10", help="CIFAR-10 arrays of the build_cifar10 stage")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    d = cifar10.load(args.data)
    x, y = torch.from_numpy(d.x_train[: max(args.images, 1000)]), torch.from_numpy(d.y_train[: max(args.images, 1000)])
    if Path(args.service).exists():
        svc = ReleaseService.load(args.service)
        source = args.service
    else:
        mean, std = channel_stats(x)
        torch.manual_seed(0)
        model = build_net("cnn", (3, 32, 32), 10, mean, std)
        fit(model, x[:1000], y[:1000], 1, 0.05, 128, 0)
        model.eval()
        svc = ReleaseService(
            model,
            target_gradient(model, x[:1000], y[:1000]),
            8 / 255,
            20,
            0.8 / 255,
            True,
            10,
            "cnn",
            (3, 32, 32),
            0,
            flip=True,
            mean=mean,
            std=std,
        )
        source = "fresh cnn surrogate (1 epoch on 1,000 CIFAR-10 images)"
    if args.steps:
        svc.steps = args.steps
    x, y = x[: args.images], y[: args.images]
    out = {
        "service": source,
        "shape": list(svc.shape),
        "steps": svc.steps,
        "threads": args.threads,
        "images": len(x),
        "load_average_before": round(os.getloadavg()[0], 2),
        "images_per_second": {},
        "images_per_cpu_second": {},
    }
    for bs in args.batch_sizes:
        svc.protected, svc.seconds = 0, 0.0
        t0, c0 = time.perf_counter(), time.process_time()
        svc.protect_stream(x, y, bs)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        out["images_per_second"][bs] = round(len(x) / wall, 1)
        out["images_per_cpu_second"][bs] = round(len(x) / cpu, 1)
        print(
            f"batch {bs:>3}: {out['images_per_second'][bs]:8.1f} images/s wall, "
            f"{out['images_per_cpu_second'][bs]:8.1f} per CPU second ({svc.steps} PGD steps)",
            flush=True,
        )
    out["load_average_after"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
