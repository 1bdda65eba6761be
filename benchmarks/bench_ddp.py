"""Data-parallel scaling of the maze training loop: samples/s with 1 process (1 and 2 torch threads) and with
2 processes under torchrun (1 thread each, gloo), same data, net and global batch.

    python -m benchmarks.bench_ddp              # 2,000 size-9 mazes, width 32, 10 iterations, 1 epoch
    python -m benchmarks.bench_ddp --quick      # 400 mazes
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

ONE = r"""
import sys, time, numpy as np, torch
torch.set_num_threads(int(sys.argv[2]))
from tenfold.components.models.recurrent import SegmentNet
from tenfold.core.seeds import seeded
from tenfold.studies.maze.params import MazeTrain
from tenfold.studies.maze.train import train
z = np.load(sys.argv[1]); m = seeded(0, lambda: SegmentNet(width=32, iters=10, recurrent=True, recall=True,
                                                            init="kaiming_zero_residual"))
t = time.perf_counter()
train(m, z["codes"], z["targets"], MazeTrain(epochs=1, batch_size=32), torch.device("cpu"), seed=0)
print(time.perf_counter() - t)
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from tasks.ddp import run_torchrun
    from tenfold.core.runtime import atomic_savez
    from tenfold.studies.maze.generate import generate
    from tenfold.studies.maze.params import MazeTrain

    n = 400 if a.quick else 2000
    data = generate(n, 9, scale=1, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.npz"
        atomic_savez(path, compress=False, codes=data["codes"], targets=data["targets"])
        rows = []
        for threads in (1, 2):
            r = subprocess.run(
                [sys.executable, "-c", ONE, str(path), str(threads)],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            )
            rows.append((f"1 process, {threads} thread(s)", float(r.stdout.strip().splitlines()[-1])))
        spec = {
            "data": str(path),
            "net": {"width": 32, "iters": 10, "recurrent": True, "recall": True, "init": "kaiming_zero_residual"},
            "cfg": MazeTrain(epochs=1, batch_size=32).model_dump(),
            "seed": 0,
            "threads": 1,
            "device": "cpu",
        }
        t = time.perf_counter()
        run_torchrun("tenfold.studies.maze.distributed", spec, 2, Path(tmp) / "ddp")
        rows.append(("2 processes (torchrun, gloo), 1 thread each, incl. ~3 s launch", time.perf_counter() - t))
    base = rows[0][1]
    print(f"maze training, {n} size-9 mazes, 1 epoch, global batch 32")
    print("| setting | seconds | samples/s | speed-up vs 1 process, 1 thread |\n|---|---|---|---|")
    for name, sec in rows:
        print(f"| {name} | {sec:.1f} | {n / sec:.0f} | {base / sec:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
