"""Two trainings at once on 2 cores: as two threads of one process (a stage's two Prefect workers, the default task
runner) against two separate processes (what a process-based task runner would give), and one training alone.

Each training is security's victim recipe (the committed params: ResNet-8 with GroupNorm, crop + flip, SGD) on the
CIFAR-10 arrays of stage build_cifar10, at 1 torch thread, for `--epochs` epochs. The modes alternate for `--rounds`
rounds and the medians are compared, because one sample on a shared VM moves by 10-20%. The gap between threads and
processes is what Python's GIL costs a stage's two workers.

    python -m benchmarks.bench_workers                       # needs data/cifar10 (dvc repro build_cifar10)
    python -m benchmarks.bench_workers --data ../other/data --rounds 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _victim(data_dir: str, epochs: int):
    """A function training one victim of `seed` (data loaded once, outside the timing)."""
    import torch

    from tenfold.components.victims import train
    from tenfold.registry import load_params
    from tenfold.studies.security import benchmark

    torch.set_num_threads(1)
    p = load_params(ROOT / "params.yaml", ["security"])["security"]
    cifar = Path(data_dir) / "cifar10"
    if not (cifar / "cifar10.npz").exists():
        raise SystemExit(f"bench_workers: no CIFAR-10 arrays under {cifar}: run `dvc repro build_cifar10` first")
    data = benchmark.load_data(p.data, data_dir, 0)
    v = p.victim.model_copy(update={"epochs": epochs})
    cfg = benchmark.train_config(v, False)

    def one(seed: int) -> None:
        train(benchmark.new_model(data, v, seed), data.x_train, data.y_train, cfg, "cpu", seed)

    return one


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def run(data_dir: str, epochs: int, rounds: int) -> dict:
    one = _victim(data_dir, epochs)
    one(0)  # warm-up: oneDNN's first-call set-up and the page cache

    def threads() -> None:
        ts = [threading.Thread(target=one, args=(s,)) for s in (1, 2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()

    child = [sys.executable, "-m", "benchmarks.bench_workers", "--data", data_dir, "--epochs", str(epochs), "--child"]

    def processes() -> float:
        # each child loads its data and warms up, says "ready", and trains on "go": both time the same span
        kw = {"cwd": ROOT, "stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "text": True}
        procs = [subprocess.Popen([*child, str(s)], **kw) for s in (1, 2)]
        if any(p.stdout.readline().strip() != "ready" for p in procs):
            raise SystemExit("bench_workers: a child did not start")
        t = time.perf_counter()
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        for p in procs:
            p.communicate()
        if any(p.returncode for p in procs):
            raise SystemExit("bench_workers: a child training failed")
        return time.perf_counter() - t

    walls: dict[str, list[float]] = {"alone": [], "threads": [], "processes": []}
    for _ in range(rounds):  # alternate the modes: drift of the machine hits all three alike
        walls["alone"].append(_timed(lambda: one(1)))
        walls["threads"].append(_timed(threads))
        walls["processes"].append(processes())
    med = {k: statistics.median(v) for k, v in walls.items()}
    return {
        "epochs": epochs,
        "rounds": rounds,
        "wall_s": {k: [round(x, 2) for x in v] for k, v in walls.items()},
        "median_s": {k: round(v, 2) for k, v in med.items()},
        "threads_over_processes": round(med["threads"] / med["processes"], 3),
        "two_at_once_over_alone": round(med["processes"] / med["alone"], 3),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT / "data"), help="folder holding cifar10/ (build_cifar10's output)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child is not None:
        one = _victim(a.data, a.epochs)
        one(0)
        print("ready", flush=True)
        sys.stdin.readline()
        one(a.child)
        return 0
    print(json.dumps(run(a.data, a.epochs, a.rounds), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
