"""Prefect tasks of stage `lowkey`: the filter and the evaluations (the differentiable recognizers, dlib, image
quality). Face detection is in tasks/lowkey_faces.py, surrogate training in tasks/lowkey_surrogates.py."""

from __future__ import annotations

import time

import numpy as np
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from tasks._task import task
from tasks.progress import progress
from tenfold.core.seeds import seed_for
from tenfold.studies.lowkey.attack import LowKey
from tenfold.studies.lowkey.data import quality
from tenfold.studies.lowkey.dlibrec import DlibJudge
from tenfold.studies.lowkey.params import LowKeyAttack
from tenfold.studies.lowkey.pipeline import to_tensor, to_uint8
from tenfold.studies.lowkey.recognizers import embed


@task(name="lowkey-protect", cache_policy=NO_CACHE)
def protect(
    models: list,
    images: np.ndarray,
    points: list,
    cfg: LowKeyAttack,
    seed: int,
    snapshots: list[int],
    show_progress: bool = False,
    label: str = "lowkey: filter",
) -> dict:
    """Filter uint8 photos (B, H, W, 3) with one face each (its landmarks); returns {"photos": {step: uint8
    photos after that many steps}, "feature_distance", "cpu_seconds"}. The start noise is seeded by `seed`. A bar
    of the attack steps when `show_progress`, a Prefect progress artifact inside a run."""
    t0 = time.process_time()
    with progress(label, cfg.n_starts * cfg.n_iters, enabled=show_progress) as step:
        _, stats = LowKey(models, cfg).protect(
            to_tensor(images),
            points,
            seed=seed,
            snapshots=sorted({*snapshots, cfg.n_iters}),
            progress=lambda done, total: step(),
        )
    out = {k: to_uint8(v) for k, v in stats["snapshots"].items()}
    get_run_logger().info("LowKey: %d photos filtered (%d steps)", len(images), cfg.n_iters)
    return {"photos": out, "feature_distance": stats["feature_distance"], "cpu_seconds": time.process_time() - t0}


def protect_batches(
    models: list,
    images: np.ndarray,
    points: list,
    cfg: LowKeyAttack,
    seed: int,
    snapshots: list[int],
    show_progress: bool = False,
) -> list:
    """Submit the filter in batches of `cfg.batch_size` (each batch's start noise seeded by its first index)."""
    b = cfg.batch_size
    return [
        protect.submit(
            models,
            images[i : i + b],
            points[i : i + b],
            cfg,
            seed_for(seed, "lowkey", "batch", i),
            snapshots,
            show_progress,
            f"lowkey: filter photos {i}-{min(i + b, len(images)) - 1} ({cfg.n_iters} steps)",
        )
        for i in range(0, len(images), b)
    ]


def gather(futures: list) -> dict:
    """Join the batches of `protect_batches`: {"photos": {step: photos}, "feature_distance", "cpu_seconds"}."""
    parts = [f.result() for f in futures]
    steps = parts[0]["photos"].keys()
    return {
        "photos": {s: np.concatenate([p["photos"][s] for p in parts]) for s in steps},
        "feature_distance": np.concatenate([p["feature_distance"] for p in parts]),
        "cpu_seconds": float(sum(p["cpu_seconds"] for p in parts)),
    }


@task(name="lowkey-embed", cache_policy=NO_CACHE)
def embed_sets(model, sets: dict[str, tuple[np.ndarray, list]]) -> dict[str, np.ndarray]:
    """One recognizer's L2-normalised embeddings of each named photo set (photos, landmarks)."""
    return {name: embed(model, photos, pts) for name, (photos, pts) in sets.items()}


@task(name="lowkey-dlib", cache_policy=NO_CACHE)
def dlib_describe(sets: dict[str, np.ndarray], upsample: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """dlib's descriptors (its own detection and alignment) of each named photo set: (descriptors, detected)."""
    judge = DlibJudge(upsample)
    return {name: judge.describe(photos) for name, photos in sets.items()}


@task(name="lowkey-quality", cache_policy=NO_CACHE)
def image_quality(clean: np.ndarray, filtered: np.ndarray, boxes: np.ndarray) -> dict[str, np.ndarray]:
    """Per photo: face-region SSIM, full-photo SSIM and PSNR of the filtered photos (uint8, as saved)."""
    return quality(clean, filtered, boxes)
