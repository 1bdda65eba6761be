"""Data-parallel scaling of the maze and depth training loops: samples/s with 1 process (1 and 2 torch threads)
and with 2 processes under torchrun (1 thread each, gloo), same data, net and global batch.

    python -m benchmarks.bench_ddp              # maze: 2,000 size-9 mazes, width 32, 10 iterations, 1 epoch;
                                                # depth: 2,000 32x32 RGB images, residual net width 16, depth 11
    python -m benchmarks.bench_ddp --quick      # 400 of each
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

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

ONE_DEPTH = r"""
import sys, time, numpy as np, torch
torch.set_num_threads(int(sys.argv[2]))
from tenfold.studies.depth import distributed as entry
from tenfold.studies.depth.params import DepthTrain
from tenfold.studies.depth.train import train
z = np.load(sys.argv[1]); net = entry.build(NET)
t = time.perf_counter()
train(net, torch.as_tensor(z["x"]), torch.as_tensor(z["y"]), DepthTrain(epochs=1, batch_size=32), 0.05, 0)
print(time.perf_counter() - t)
"""
DEPTH_NET = {
    "family": "residual",
    "depth": 11,
    "recurrent": True,
    "width": 16,
    "shape": [3, 32, 32],
    "classes": 10,
    "init": "kaiming",
    "init_seed": 0,
}


def _scaling(label: str, n: int, one: str, data: Path, module: str, spec: dict, tmp: Path) -> None:
    rows = []
    for threads in (1, 2):
        r = subprocess.run(
            [sys.executable, "-c", one, str(data), str(threads)], cwd=ROOT, capture_output=True, text=True, check=True
        )
        rows.append((f"1 process, {threads} thread(s)", float(r.stdout.strip().splitlines()[-1])))
    from tasks.ddp import run_torchrun

    t = time.perf_counter()
    run_torchrun(module, spec, 2, tmp / module)
    rows.append(("2 processes (torchrun, gloo), 1 thread each, incl. ~3 s launch", time.perf_counter() - t))
    base = rows[0][1]
    print(f"\n{label}")
    print("| setting | seconds | samples/s | speed-up vs 1 process, 1 thread |\n|---|---|---|---|")
    for name, sec in rows:
        print(f"| {name} | {sec:.1f} | {n / sec:.0f} | {base / sec:.2f}x |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from tenfold.core.runtime import atomic_savez
    from tenfold.studies.depth.params import DepthTrain
    from tenfold.studies.maze.generate import generate
    from tenfold.studies.maze.params import MazeTrain

    n = 400 if a.quick else 2000
    data = generate(n, 9, scale=1, seed=0)
    g = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        atomic_savez(tmp / "maze.npz", compress=False, codes=data["codes"], targets=data["targets"])
        maze_spec = {
            "data": str(tmp / "maze.npz"),
            "net": {"width": 32, "iters": 10, "recurrent": True, "recall": True, "init": "kaiming_zero_residual"},
            "cfg": MazeTrain(epochs=1, batch_size=32).model_dump(),
            "seed": 0,
            "threads": 1,
            "device": "cpu",
        }
        label = f"maze training, {n} size-9 mazes, 1 epoch, global batch 32"
        _scaling(label, n, ONE, tmp / "maze.npz", "tenfold.studies.maze.distributed", maze_spec, tmp)
        x = g.standard_normal((n, 3, 32, 32)).astype(np.float32)
        atomic_savez(tmp / "depth.npz", compress=False, x=x, y=g.integers(0, 10, n))
        depth_spec = {
            "data": str(tmp / "depth.npz"),
            "net": DEPTH_NET,
            "cfg": DepthTrain(epochs=1, batch_size=32).model_dump(),
            "lr": 0.05,
            "shuffle_seed": 0,
            "threads": 1,
            "device": "cpu",
        }
        one = ONE_DEPTH.replace("NET)", f"{DEPTH_NET!r})")
        label = f"depth training, {n} 32x32 RGB images, recurrent residual net width 16 depth 11, 1 epoch, batch 32"
        _scaling(label, n, one, tmp / "depth.npz", "tenfold.studies.depth.distributed", depth_spec, tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
