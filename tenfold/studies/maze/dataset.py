"""Maze dataset files: one compressed .npz per (split, size), validated on load."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from tenfold.core.runtime import atomic_savez
from tenfold.studies.maze.generate import GOAL, START, WALL, generate, image_side

FORMAT_VERSION = 1


class MazeDataError(RuntimeError):
    """A maze file is missing, truncated, corrupt or inconsistent with its metadata."""


def build(path: str | Path, count: int, size: int, scale: int, seed: int) -> dict:
    data = generate(count, size, scale=scale, seed=seed)
    meta = {"format": FORMAT_VERSION, "count": int(count), "size": int(size), "scale": int(scale), "seed": int(seed)}
    atomic_savez(path, codes=data["codes"], targets=data["targets"], meta=np.array(json.dumps(meta)))
    return meta


def load(
    path: str | Path, expect_size: int | None = None, expect_scale: int | None = None
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Load and validate a maze file. Any problem raises MazeDataError naming the file and the fix."""
    path = Path(path)
    hint = "regenerate it with `dvc repro build_mazes` (or `tenfold run build_mazes`)"
    if not path.exists():
        raise MazeDataError(f"{path}: maze file not found; {hint}")
    try:
        with np.load(path, allow_pickle=False) as z:
            codes, targets, meta = z["codes"], z["targets"], json.loads(str(z["meta"]))
    except (zipfile.BadZipFile, OSError, ValueError, KeyError, EOFError, json.JSONDecodeError) as e:
        raise MazeDataError(f"{path}: corrupt or truncated maze file ({type(e).__name__}: {e}); {hint}") from None
    problems = []
    if meta.get("format") != FORMAT_VERSION:
        problems.append(f"format {meta.get('format')!r} != {FORMAT_VERSION}")
    size, scale = meta.get("size"), meta.get("scale")
    if expect_size is not None and size != expect_size:
        problems.append(f"size {size} != expected {expect_size}")
    if expect_scale is not None and scale != expect_scale:
        problems.append(f"scale {scale} != expected {expect_scale}")
    if not problems:
        side = image_side(size, scale)
        if codes.dtype != np.uint8 or targets.dtype != np.uint8:
            problems.append("arrays must be uint8")
        if codes.shape != targets.shape or codes.shape[1:] != (side, side):
            problems.append(f"shape {codes.shape}/{targets.shape}, expected (N, {side}, {side})")
        elif codes.shape[0] != meta.get("count"):
            problems.append(f"{codes.shape[0]} mazes, metadata says {meta.get('count')}")
        elif codes.max(initial=0) > GOAL or targets.max(initial=0) > 1:
            problems.append("values out of range")
        elif (targets.astype(bool) & (codes == WALL)).any():
            problems.append("path crosses a wall")
        elif len(codes) and not ((codes == START).any((1, 2)).all() and (codes == GOAL).any((1, 2)).all()):
            problems.append("a maze lacks its start or goal")
    if problems:
        raise MazeDataError(f"{path}: invalid maze file: {'; '.join(problems)}; {hint}")
    return codes, targets, meta
