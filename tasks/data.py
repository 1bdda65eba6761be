"""Data-building and loading tasks."""
from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from tenfold.mazes import dataset as maze_data


def maze_file(root: str | Path, split: str, size: int) -> Path:
    return Path(root) / "mazes" / f"{split}_{size}.npz"


@task(name="build-maze-file", cache_policy=NO_CACHE)
def build_maze_file(path: str, count: int, size: int, scale: int, seed: int) -> dict:
    meta = maze_data.build(path, count, size, scale, seed)
    get_run_logger().info("built %d mazes of size %d (scale %d) -> %s", count, size, scale, path)
    return meta


@task(name="load-mazes", cache_policy=NO_CACHE)
def load_mazes(path: str, size: int, scale: int):
    return maze_data.load(path, expect_size=size, expect_scale=scale)
