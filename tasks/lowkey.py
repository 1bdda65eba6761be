"""Prefect tasks of study `lowkey`: faces, detection, surrogate training, the filter, and the evaluations
(surrogates, dlib, image quality)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from tenfold.components.data.faces import FaceData, load_att
from tenfold.core.checkpoints import Checkpoint
from tenfold.core.seeds import seed_for
from tenfold.studies.lowkey.attack import LowKey
from tenfold.studies.lowkey.data import quality
from tenfold.studies.lowkey.dlibrec import DlibRecognizer
from tenfold.studies.lowkey.models import count_parameters
from tenfold.studies.lowkey.params import LowKeyAttack, LowKeyTrain, Surrogate
from tenfold.studies.lowkey.pipeline import Detector, rank_k, thetas, to_tensor, to_uint8
from tenfold.studies.lowkey.train import embed, train_surrogate


@task(name="lowkey-load-faces", cache_policy=NO_CACHE)
def load_faces(roots: list[str]) -> FaceData:
    """The AT&T faces from the first root that has them."""
    faces = load_att([Path(r) for r in roots])
    get_run_logger().info(
        "AT&T faces: %d images of %d subjects (%s)", len(faces.images), len(set(faces.subjects.tolist())), faces.source
    )
    return faces


@task(name="lowkey-detect", cache_policy=NO_CACHE)
def detect(images: np.ndarray, crop: int, min_face_size: int) -> tuple[torch.Tensor, np.ndarray]:
    """MTCNN landmarks -> alignment thetas (B, 2, 3) and the detected mask."""
    pts = Detector(min_face_size).landmarks(images)
    found = np.array([p is not None for p in pts])
    get_run_logger().info("MTCNN found a face in %d of %d images", found.sum(), len(found))
    return thetas(pts, images.shape[1:3], crop), found


@task(name="lowkey-train-surrogate", cache_policy=NO_CACHE)
def train_face_model(
    spec: Surrogate,
    images: torch.Tensor,
    th: torch.Tensor,
    labels: torch.Tensor,
    crop: int,
    cfg: LowKeyTrain,
    seed: int,
    device,
    checkpoint: Checkpoint,
):
    log = get_run_logger()
    model, history = train_surrogate(spec, images, th, labels, crop, cfg, seed, device, checkpoint)
    log.info(
        "%s (%s + %s, %d parameters): loss %.3f, train acc %.3f",
        spec.name,
        spec.backbone,
        spec.head,
        count_parameters(model),
        history[-1]["loss"],
        history[-1]["train_acc"],
    )
    return model, history


@task(name="lowkey-protect", cache_policy=NO_CACHE)
def protect(models: list, images: np.ndarray, th: torch.Tensor, crop: int, cfg: LowKeyAttack, seed: int):
    """Filter `images` (B, H, W, 3) uint8 in batches; returns the filtered uint8 images and per-image feature
    distances. Each batch's start noise has its own seed, derived from `seed` and the batch's first index."""
    log = get_run_logger()
    lk = LowKey(models, crop, cfg)
    out, dist = [], []
    for i in range(0, len(images), cfg.batch_size):
        adv, stats = lk.protect(
            to_tensor(images[i : i + cfg.batch_size]),
            th[i : i + cfg.batch_size],
            seed_for(seed, "lowkey", "filter_batch", i),
        )
        out.append(to_uint8(adv))
        dist.append(stats["feature_distance"])
        log.info("LowKey: %d / %d images filtered", min(i + cfg.batch_size, len(images)), len(images))
    return np.concatenate(out), np.concatenate(dist)


@task(name="lowkey-quality", cache_policy=NO_CACHE)
def image_quality(clean: np.ndarray, filtered: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-image SSIM and PSNR of the filtered images (uint8, as saved) against the originals."""
    return quality(clean, filtered)


@task(name="lowkey-eval-surrogate", cache_policy=NO_CACHE)
def eval_surrogate(
    model,
    gallery_crops: torch.Tensor,
    gallery_ids: np.ndarray,
    probe_crops: dict[str, torch.Tensor],
    probe_ids: np.ndarray,
    ranks: list[int],
) -> dict[str, dict[int, float]]:
    """Rank-k of one face model for each probe set (e.g. clean, filtered), gallery of clean aligned crops."""
    g = embed(model, gallery_crops)
    return {name: rank_k(g, gallery_ids, embed(model, crops), probe_ids, ranks) for name, crops in probe_crops.items()}


@task(name="lowkey-eval-dlib", cache_policy=NO_CACHE)
def eval_dlib(
    gallery: np.ndarray,
    gallery_ids: np.ndarray,
    probes: dict[str, np.ndarray],
    probe_ids: np.ndarray,
    ranks: list[int],
    upsample: int,
) -> dict[str, dict]:
    """dlib's recognizer (its own HOG detection and alignment) on each probe set: rank-k and detection rate."""
    rec = DlibRecognizer(upsample)
    g, _ = rec.describe(gallery)
    out = {}
    for name, imgs in probes.items():
        d, found = rec.describe(imgs)
        out[name] = {
            "ranks": rank_k(g, gallery_ids, d, probe_ids, ranks, metric="euclidean"),
            "detected": float(found.mean()),
        }
    return out
