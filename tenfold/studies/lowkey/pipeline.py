"""The face-recognition pipeline LowKey attacks: detection, 5-point alignment, embedding, gallery search.

Detection is MTCNN with the weights shipped inside facenet-pytorch (no download). Alignment is the
similarity transform from the 5 detected landmarks to the ArcFace reference points, expressed as an
affine `theta` for `F.affine_grid`, so the aligned crop is a differentiable function of the full image.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

# ArcFace / face.evoLVe reference landmarks for a 112x112 crop (eyes, nose, mouth corners).
REFERENCE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]], np.float64
)


class Detector:
    """MTCNN (facenet-pytorch weights) returning the 5 landmarks of the most confident face."""

    def __init__(self, min_face_size: int = 20, device="cpu"):
        from facenet_pytorch import MTCNN

        self.mtcnn = MTCNN(keep_all=False, min_face_size=min_face_size, device=device)

    def landmarks(self, images: np.ndarray | list[np.ndarray]) -> list[np.ndarray | None]:
        """(H, W, 3) uint8 images -> per image a (5, 2) array of (x, y) landmarks, or None without a face."""
        images = np.ascontiguousarray(images)
        out: list[np.ndarray | None] = []
        for i in range(0, len(images), 32):  # MTCNN batches same-size images
            _, probs, points = self.mtcnn.detect(images[i : i + 32], landmarks=True)
            for pr, pt in zip(probs, points):
                ok = pt is not None and len(pt) > 0 and pr is not None and pr[0] is not None
                out.append(np.asarray(pt[int(np.argmax(pr))], np.float64) if ok else None)
        return out


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (Umeyama) mapping src (N, 2) onto dst (N, 2), as a 3x3 matrix."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1
    rot = u @ sign @ vt
    scale = np.trace(np.diag(sig) @ sign) / s.var(0).sum()
    m = np.eye(3)
    m[:2, :2] = scale * rot
    m[:2, 2] = mu_d - scale * rot @ mu_s
    return m


def _to_normalized(width: int, height: int) -> np.ndarray:
    """Pixel coordinates (pixel centres at integers) -> affine_grid coordinates (align_corners=False)."""
    return np.array([[2.0 / width, 0, 1.0 / width - 1], [0, 2.0 / height, 1.0 / height - 1], [0, 0, 1]])


def alignment_theta(points: np.ndarray, image_hw: tuple[int, int], crop: int) -> np.ndarray:
    """(2, 3) theta for `F.affine_grid` sampling the aligned `crop` x `crop` face from an image of `image_hw`."""
    ref = REFERENCE_112 * crop / 112.0
    m = similarity(np.asarray(points, np.float64), ref)  # image pixels -> crop pixels
    h, w = image_hw
    theta = _to_normalized(w, h) @ np.linalg.inv(m) @ np.linalg.inv(_to_normalized(crop, crop))
    return theta[:2].astype(np.float32)


def thetas(points: list[np.ndarray | None], image_hw: tuple[int, int], crop: int) -> torch.Tensor:
    """Alignment thetas (B, 2, 3); an image without landmarks gets the centred square crop (the fallback)."""
    h, w = image_hw
    s = min(h, w)
    centre = np.array([[s / w, 0, 0], [0, s / h, 0]], np.float32)
    return torch.from_numpy(np.stack([centre if p is None else alignment_theta(p, image_hw, crop) for p in points]))


def warp(images: torch.Tensor, theta: torch.Tensor, crop: int) -> torch.Tensor:
    """Differentiable aligned crops: images (B, 3, H, W) in [0, 1], theta (B, 2, 3) -> (B, 3, crop, crop)."""
    grid = F.affine_grid(theta, [images.shape[0], images.shape[1], crop, crop], align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def aligned(images: np.ndarray, theta: torch.Tensor, crop: int) -> torch.Tensor:
    """Aligned crops (B, 3, crop, crop) of uint8 images (B, H, W, 3) with known thetas."""
    return warp(to_tensor(images), theta, crop)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """(B, H, W, 3) uint8 -> (B, 3, H, W) float in [0, 1]."""
    return torch.from_numpy(np.array(images, copy=True)).permute(0, 3, 1, 2).float().div(255.0)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) in [0, 1] -> (B, H, W, 3) uint8 (rounded: what a saved PNG holds)."""
    return images.detach().clamp(0, 1).mul(255).round().byte().permute(0, 2, 3, 1).cpu().numpy()


def align(detector: Detector, images: np.ndarray, crop: int) -> tuple[torch.Tensor, np.ndarray]:
    """Detect and align a batch of same-size images: (aligned crops (B, 3, crop, crop), detected mask (B,)).

    An image without a detected face is centre-cropped and resized (what a pipeline falls back to); the
    mask says which images had a face, so callers can report detection failures.
    """
    pts = detector.landmarks(images)
    return warp(to_tensor(images), thetas(pts, images.shape[1:3], crop), crop), np.array([p is not None for p in pts])


def rank_k(
    gallery: np.ndarray,
    gallery_ids: np.ndarray,
    probes: np.ndarray,
    probe_ids: np.ndarray,
    ks: list[int],
    metric: str = "cosine",
) -> dict[int, float]:
    """Closed-set identification: fraction of probes whose identity is among the k nearest gallery entries.

    `metric` is "cosine" (the surrogates) or "euclidean" (dlib's descriptors, compared by distance).
    """
    if metric == "cosine":
        g = gallery / np.linalg.norm(gallery, axis=1, keepdims=True).clip(1e-12)
        p = probes / np.linalg.norm(probes, axis=1, keepdims=True).clip(1e-12)
        dist = -(p @ g.T)
    elif metric == "euclidean":
        dist = np.linalg.norm(probes[:, None, :] - gallery[None, :, :], axis=2)
    else:
        raise ValueError(f"metric must be 'cosine' or 'euclidean', got {metric!r}")
    order = np.argsort(dist, axis=1, kind="stable")
    ranked = gallery_ids[order]
    return {k: float(np.mean((ranked[:, :k] == probe_ids[:, None]).any(1))) for k in ks}
