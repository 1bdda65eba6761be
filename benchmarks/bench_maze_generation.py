"""Maze generation throughput: size-13 mazes per second on one core (target: >= 2,000)."""

from __future__ import annotations

import json
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

from tenfold.studies.maze.generate import generate  # noqa: E402


def run(count: int = 20_000) -> dict:
    out = {}
    for scale in (1, 2):
        generate(100, 13, scale=scale, seed=0)  # warm-up
        t = time.perf_counter()
        generate(count, 13, scale=scale, seed=1)
        dt = time.perf_counter() - t
        out[f"size13_scale{scale}_per_second"] = round(count / dt)
    out["target_per_second"] = 2000
    return out


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
