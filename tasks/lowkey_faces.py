"""Tasks of stage `lowkey_faces` (and the re-detection of filtered photos in stage `lowkey`): MTCNN landmarks and
boxes, in a module of their own so the face-crop stage depends on the detector, not on the attack."""

from __future__ import annotations

import numpy as np
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from tasks._task import task
from tenfold.studies.lowkey.data import Photos
from tenfold.studies.lowkey.pipeline import Detector, as_points


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
