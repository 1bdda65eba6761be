"""Output-space distances for center smoothing.

Outputs are handled flattened: every distance takes `a` and `b` of shape (..., D) with broadcastable leading
dimensions and returns float64 distances of the broadcast leading shape. Distances that need the image layout
(total variation, LPIPS) are built for an output shape by `get_distance(name, shape)`.
`pairwise_blocks` yields the (len(a), len(b)) matrix one block of rows at a time, so the O(n^2) median step of
center smoothing never holds n^2 values at once.

    l2       ||a - b||_2
    angular  arccos(cos(a, b)) / pi, in [0, 1]
    tv1/tv2  total variation of the difference image a - b (shape (C, H, W)): the sum over vertical and
             horizontal pixel differences of their l1 (tv1) or l2 (tv2) norm across channels; a pseudometric
    iou      1 - IoU of boxes (x1, y1, x2, y2); a missing box is all -1: distance 1 to any box and 0 to another
             missing box (the official code divides 0 by 0 there)
    lpips    optional: needs the `lpips` package and its VGG/AlexNet weights, which are not available offline
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence

import torch

Distance = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def l2(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distance over the last dimension, in float64."""
    return (a.double() - b.double()).norm(dim=-1)


def angular(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Angle between the two outputs divided by pi (a metric on directions)."""
    a, b = a.double(), b.double()
    cos = (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(1e-12)
    return torch.arccos(cos.clamp(-1.0, 1.0)) / math.pi


def total_variation(img: torch.Tensor, p: int) -> torch.Tensor:
    """Total variation of images (..., C, H, W): sum over pixel differences of their p-norm across channels."""
    img = img.double()
    dy = (img[..., 1:, :] - img[..., :-1, :]).flatten(start_dim=-2)
    dx = (img[..., :, 1:] - img[..., :, :-1]).flatten(start_dim=-2)
    return torch.cat([dy, dx], dim=-1).norm(p=p, dim=-2).sum(-1)


def tv_of_difference(shape: Sequence[int], p: int) -> Distance:
    """d(a, b) = TV_p(a - b) for flattened images of `shape` (C, H, W)."""
    shape = tuple(shape)
    if len(shape) != 3:
        raise ValueError(f"total variation needs image outputs (C, H, W), got output shape {shape}")

    def dist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        diff = a.double() - b.double()
        return total_variation(diff.reshape(*diff.shape[:-1], *shape), p)

    return dist


def iou_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Jaccard distance 1 - IoU between boxes (..., 4) in (x1, y1, x2, y2); an empty box means no detection."""
    a, b = a.double(), b.double()
    iw = (torch.minimum(a[..., 2], b[..., 2]) - torch.maximum(a[..., 0], b[..., 0])).clamp_min(0)
    ih = (torch.minimum(a[..., 3], b[..., 3]) - torch.maximum(a[..., 1], b[..., 1])).clamp_min(0)
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0]).clamp_min(0) * (a[..., 3] - a[..., 1]).clamp_min(0)
    area_b = (b[..., 2] - b[..., 0]).clamp_min(0) * (b[..., 3] - b[..., 1]).clamp_min(0)
    d = 1.0 - inter / (area_a + area_b - inter).clamp_min(1e-12)
    empty_a, empty_b = area_a <= 0, area_b <= 0
    d = torch.where(empty_a | empty_b, torch.ones_like(d), d)
    return torch.where(empty_a & empty_b, torch.zeros_like(d), d)


def lpips_distance(shape: Sequence[int], net: str = "alex") -> Distance:
    """LPIPS between flattened images in [0, 1] (optional; never required offline)."""
    try:
        import lpips  # noqa: PLC0415 - optional dependency
    except ImportError as e:
        raise ImportError(
            "distance 'lpips' needs the optional `lpips` package and its pretrained weights "
            "(downloaded on first use; not available offline); use l2, angular, tv1 or tv2"
        ) from e
    model = lpips.LPIPS(net=net, verbose=False).eval()
    shape = tuple(shape)

    def dist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        lead = torch.broadcast_shapes(a.shape[:-1], b.shape[:-1])
        a2 = a.expand(*lead, a.shape[-1]).reshape(-1, *shape)
        b2 = b.expand(*lead, b.shape[-1]).reshape(-1, *shape)
        model.to(a2.device)
        return model(a2 * 2 - 1, b2 * 2 - 1).double().reshape(lead)

    return dist


NAMES = ("l2", "angular", "tv1", "tv2", "iou", "lpips")


def get_distance(name: str, shape: Sequence[int] | None = None) -> Distance:
    """The distance `name` for outputs of `shape` (needed by tv1, tv2 and lpips)."""
    if name == "l2":
        return l2
    if name == "angular":
        return angular
    if name == "iou":
        return iou_distance
    if name in ("tv1", "tv2", "lpips"):
        if shape is None:
            raise ValueError(f"distance {name!r} needs the output image shape (C, H, W)")
        return tv_of_difference(shape, int(name[-1])) if name != "lpips" else lpips_distance(shape)
    raise ValueError(f"unknown distance {name!r} (known: {', '.join(NAMES)})")


def _l2_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.cdist(a.double(), b.double())


def _angular_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a, b = a.double(), b.double()
    cos = (a / a.norm(dim=-1, keepdim=True).clamp_min(1e-12)) @ (b / b.norm(dim=-1, keepdim=True).clamp_min(1e-12)).T
    return torch.arccos(cos.clamp(-1.0, 1.0)) / math.pi


# matrix forms (a matrix product instead of an (n, m, D) difference) for the distances that have one;
# they agree with the elementwise forms to float64 rounding
_MATRIX = {l2: _l2_matrix, angular: _angular_matrix}


def pairwise_blocks(
    dist: Distance, a: torch.Tensor, b: torch.Tensor, block_elems: int = 1 << 22
) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield (first row, rows of the distance matrix between a (n, D) and b (m, D)), each block holding at most
    about `block_elems` values (rows * m, or rows * m * D where no matrix form exists), so the n x m matrix is
    never materialised at once."""
    matrix = _MATRIX.get(dist)
    per_row = max(1, b.shape[0] * (1 if matrix else b.shape[-1]))
    rows = max(1, block_elems // per_row)
    for i in range(0, a.shape[0], rows):
        blk = a[i : i + rows]
        yield i, matrix(blk, b) if matrix else dist(blk.unsqueeze(1), b.unsqueeze(0))


def pairwise(dist: Distance, a: torch.Tensor, b: torch.Tensor, block_elems: int = 1 << 22) -> torch.Tensor:
    """The full (len(a), len(b)) distance matrix (for small inputs and tests)."""
    return torch.cat([blk for _, blk in pairwise_blocks(dist, a, b, block_elems)], dim=0)
