"""Data-building flows (one DVC stage each): every dataset a study trains on is built here, seeded."""
from __future__ import annotations

from prefect import flow

from flows.common import data_root, prepare
from tasks.data import build_maze_file, maze_file


@flow(name="build_mazes")
def build_mazes_flow(params_path: str = "params.yaml", root: str = ".") -> dict:
    ctx = prepare("maze", params_path, root)
    d = ctx.params.data
    jobs = [("train", d.train_size, d.train_count)] + [("test", s, d.test_count) for s in d.test_sizes]
    futures = []
    for split, size, count in jobs:
        # distinct, reproducible streams per split: train and test never share mazes
        seed = ctx.seed * 2 + (0 if split == "train" else 1)
        futures.append(build_maze_file.submit(str(maze_file(data_root(ctx), split, size)), count, size, d.scale, seed))
    return {f"{s}_{z}": f.result() for (s, z, _), f in zip(jobs, futures)}


