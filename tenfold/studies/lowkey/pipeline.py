"""The face-recognition pipeline LowKey attacks: detection, 5-point alignment, embedding, gallery search.

Detection is MTCNN with the weights shipped inside facenet-pytorch (no download). Alignment is the
similarity transform from the 5 detected landmarks to the ArcFace reference points, expressed as an
affine `theta` for `F.affine_grid`, so the aligned crop is a differentiable function of the full image.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from tenfold.components.models.facemodels import TEMPLATE_112
from tenfold.core.runtime import channels_last

REFERENCE_112 = TEMPLATE_112  # ArcFace / face.evoLVe reference landmarks for a 112x112 crop


class Detector:
    """MTCNN (facenet-pytorch weights): boxes, 5 landmarks and confidences of the faces in a photo."""

    def __init__(self, min_face_size: int = 20, device="cpu"):
        from facenet_pytorch import MTCNN

        self.mtcnn = MTCNN(keep_all=True, min_face_size=min_face_size, device=device)
        channels_last(self.mtcnn)  # P-, R- and O-Net: 1.7x faster detection on a CPU core

    def faces(self, images: np.ndarray | list[np.ndarray]) -> list[list[tuple[np.ndarray, np.ndarray, float]]]:
        """(H, W, 3) uint8 images of one size -> per image its faces as (box x1 y1 x2 y2, (5, 2) landmarks,
        probability), most confident first."""
        images = np.ascontiguousarray(images)
        out = []
        for i in range(0, len(images), 32):  # MTCNN batches same-size images
            boxes, probs, points = self.mtcnn.detect(images[i : i + 32], landmarks=True)
            for bx, pr, pt in zip(boxes, probs, points):
                if bx is None or pt is None or pr is None or len(pt) == 0:
                    out.append([])
                    continue
                order = np.argsort(-np.asarray(pr, np.float64), kind="stable")
                out.append(
                    [(np.asarray(bx[k], np.float64), np.asarray(pt[k], np.float64), float(pr[k])) for k in order]
                )
        return out

    def landmarks(self, images: np.ndarray | list[np.ndarray]) -> list[np.ndarray | None]:
        """Per image the (5, 2) (x, y) landmarks of the most confident face, or None without a face."""
        return [f[0][1] if f else None for f in self.faces(images)]

    def best(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Arrays of the most confident face per image: landmarks (N, 5, 2), boxes (N, 4), probabilities (N,);
        NaN (probability 0) where no face was found."""
        found = self.faces(images)
        pts = np.full((len(found), 5, 2), np.nan, np.float32)
        boxes = np.full((len(found), 4), np.nan, np.float32)
        probs = np.zeros(len(found), np.float32)
        for k, f in enumerate(found):
            if f:
                boxes[k], pts[k], probs[k] = f[0]
        return pts, boxes, probs


def as_points(pts: np.ndarray) -> list[np.ndarray | None]:
    """(N, 5, 2) landmark arrays with NaN rows for no face -> the list form (None for no face)."""
    return [None if not np.isfinite(p).all() else np.asarray(p, np.float64) for p in pts]


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


def _hw(size: int | tuple[int, int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def alignment_theta(
    points: np.ndarray, image_hw: tuple[int, int], crop: int | tuple[int, int], template: np.ndarray | None = None
) -> np.ndarray:
    """(2, 3) theta for `F.affine_grid` sampling the aligned face of size `crop` (side, or (height, width)) from an
    image of `image_hw`; `template` is the 5-point template in crop pixels (default: the 112x112 ArcFace one,
    scaled to a square crop)."""
    ch, cw = _hw(crop)
    ref = REFERENCE_112 * ch / 112.0 if template is None else np.asarray(template, np.float64)
    m = similarity(np.asarray(points, np.float64), ref)  # image pixels -> crop pixels
    h, w = image_hw
    theta = _to_normalized(w, h) @ np.linalg.inv(m) @ np.linalg.inv(_to_normalized(cw, ch))
    return theta[:2].astype(np.float32)


def thetas(
    points: list[np.ndarray | None],
    image_hw: tuple[int, int],
    crop: int | tuple[int, int],
    template: np.ndarray | None = None,
) -> torch.Tensor:
    """Alignment thetas (B, 2, 3); an image without landmarks gets the centred square crop (the fallback)."""
    h, w = image_hw
    s = min(h, w)
    centre = np.array([[s / w, 0, 0], [0, s / h, 0]], np.float32)
    return torch.from_numpy(
        np.stack([centre if p is None else alignment_theta(p, image_hw, crop, template) for p in points])
    )


def warp(images: torch.Tensor, theta: torch.Tensor, crop: int | tuple[int, int]) -> torch.Tensor:
    """Differentiable aligned crops: images (B, 3, H, W) in [0, 1], theta (B, 2, 3) -> (B, 3, *crop)."""
    ch, cw = _hw(crop)
    grid = F.affine_grid(theta, [theta.shape[0], images.shape[1], ch, cw], align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """(B, H, W, 3) uint8 -> (B, 3, H, W) float in [0, 1]."""
    return torch.from_numpy(np.array(images, copy=True)).permute(0, 3, 1, 2).float().div(255.0)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) in [0, 1] -> (B, H, W, 3) uint8 (rounded: what a saved PNG holds)."""
    return images.detach().clamp(0, 1).mul(255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
