"""Prefect tasks of study `lowkey`: face detection, surrogate training, the filter, and the evaluations (the
differentiable recognizers, dlib, image quality)."""

from __future__ import annotations

import time

import numpy as np
import torch
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from tasks.progress import progress
from tenfold.components.models.facemodels import count_parameters
from tenfold.core.checkpoints import Checkpoint
from tenfold.core.seeds import seed_for
from tenfold.studies.lowkey.attack import LowKey
from tenfold.studies.lowkey.data import Photos, quality
from tenfold.studies.lowkey.dlibrec import DlibJudge
from tenfold.studies.lowkey.params import LowKeyAttack, LowKeyTrain, Surrogate
from tenfold.studies.lowkey.pipeline import Detector, as_points, to_tensor, to_uint8
from tenfold.studies.lowkey.recognizers import embed
from tenfold.studies.lowkey.train import train_surrogate


@task(name="lowkey-detect-files", cache_policy=NO_CACHE)
def detect_files(photos: Photos, idx: np.ndarray, min_face_size: int) -> tuple[np.ndarray, ...]:
    """MTCNN on photos `idx` of a face set on disk: landmarks (n, 5, 2), boxes (n, 4), probabilities (n,)."""
    det, out = Detector(min_face_size), []
    for i in range(0, len(idx), 64):
        out.append(det.best(photos.load(idx[i : i + 64])))
        get_run_logger().info("MTCNN: %d / %d photos", min(i + 64, len(idx)), len(idx))
    return tuple(np.concatenate([o[k] for o in out]) for k in range(3))


@task(name="lowkey-detect", cache_policy=NO_CACHE)
def detect(images: np.ndarray, min_face_size: int) -> tuple[list, np.ndarray, np.ndarray]:
    """MTCNN on uint8 photos (N, H, W, 3) in memory: (landmarks list, None without a face), boxes, found mask."""
    pts, boxes, probs = Detector(min_face_size).best(images)
    return as_points(pts), boxes, probs > 0


@task(name="lowkey-train-surrogate", cache_policy=NO_CACHE)
def train_face_model(
    spec: Surrogate,
    crops: torch.Tensor,
    labels: torch.Tensor,
    cfg: LowKeyTrain,
    seed: int,
    init_state: dict | None,
    checkpoint: Checkpoint,
    show_progress: bool = False,
):
    """Train one surrogate (resuming `checkpoint`); (model, history, CPU seconds). A bar of the training epochs
    when `show_progress`, a Prefect progress artifact inside a run."""
    log = get_run_logger()
    t0 = time.process_time()

    def on_epoch(r, step):
        log.info("%s epoch %d: loss %.3f, train acc %.3f", spec.name, r["epoch"], r["loss"], r["train_acc"])
        step()

    epochs = cfg.epochs if spec.init == "ms1m" else cfg.scratch_epochs  # as train_surrogate picks them
    with progress(f"lowkey: train surrogate {spec.name}", epochs, show_progress) as step:
        model, history = train_surrogate(
            spec, crops, labels, cfg, seed, init_state, checkpoint, on_epoch=lambda r: on_epoch(r, step)
        )
    log.info("%s (%s head, init %s, %d parameters) trained", spec.name, spec.head, spec.init, count_parameters(model))
    return model, history, time.process_time() - t0


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
