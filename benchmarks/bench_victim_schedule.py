"""The security victims' learning-rate schedule: clean test accuracy of the committed victim (ResNet-8, GroupNorm,
crop + flip, SGD with warm-up) on security's CIFAR-10 subset, under the benchmark's step decay (x0.1 at 3/8, 5/8,
7/8 of training) and under a per-epoch cosine, at several lengths, a few seeds each.

At 10 epochs the step decay leaves 3 epochs at the full rate and spends the last 4 at 1e-3 and 1e-4: the question is
how much accuracy that costs a victim trained this briefly, and how many cosine epochs give the step decay's accuracy.
Accuracy depends only on the seeds and the thread count (1 here), not on the machine's load; the wall seconds do.

    python -m benchmarks.bench_victim_schedule                    # needs data/cifar10 (dvc repro build_cifar10)
    python -m benchmarks.bench_victim_schedule --runs step:10 cosine:10 cosine:6 --seeds 1 2 --data ../x/data
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RUNS = ["step:10", "cosine:10", "cosine:6", "step:20", "cosine:20"]


def parse_run(text: str) -> tuple[str, int]:
    """`schedule:epochs` (e.g. `cosine:10`) -> ("cosine", 10)."""
    from tenfold.components.victims import SCHEDULES

    name, sep, epochs = text.partition(":")
    if not sep or name not in SCHEDULES or not epochs.isdigit() or int(epochs) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected schedule:epochs with schedule in {SCHEDULES}")
    return name, int(epochs)


def run(data_dir: str, runs: list[tuple[str, int]], seeds: list[int]) -> dict:
    import torch

    from tenfold.registry import load_params
    from tenfold.studies.security import benchmark

    torch.set_num_threads(1)
    p = load_params(ROOT / "params.yaml", ["security"])["security"]
    if not (Path(data_dir) / "cifar10" / "cifar10.npz").exists():
        raise SystemExit(f"bench_victim_schedule: no arrays in {data_dir}/cifar10 (dvc repro build_cifar10)")
    data = benchmark.load_data(p.data, data_dir, 0)
    rows = []
    for schedule, epochs in runs:
        v = p.victim.model_copy(update={"schedule": schedule, "epochs": epochs})
        accs, walls = [], []
        for seed in seeds:
            t = time.perf_counter()
            model = benchmark.train_clean(data, v, "cpu", seed)
            walls.append(round(time.perf_counter() - t, 1))
            accs.append(round(benchmark.accuracy(model, data.x_test, data.y_test, "cpu"), 4))
        rows.append(
            {
                "schedule": schedule,
                "epochs": epochs,
                "clean_acc": accs,
                "mean_acc": round(statistics.mean(accs), 4),
                "wall_s": walls,
            }
        )
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return {"n_train": len(data.y_train), "n_test": len(data.y_test), "seeds": seeds, "threads": 1, "runs": rows}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT / "data"), help="folder holding cifar10/ (build_cifar10's output)")
    ap.add_argument("--runs", nargs="+", type=parse_run, default=[parse_run(r) for r in DEFAULT_RUNS])
    ap.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    a = ap.parse_args(argv)
    print(json.dumps(run(a.data, a.runs, a.seeds), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
