"""Base functions for center smoothing: the conv autoencoder (dimensionality reduction), the compressed-sensing
reconstructor (Gaussian measurement matrix, seeded) and face-box detectors that ship offline.

The autoencoder and the reconstructor follow the official `AutoencoderMNIST` / `ReconstructorMNIST` layouts (conv
3x3 -> BN -> two stride-2 4x4 convs -> BN -> ..., sigmoid output), with the channel widths as parameters so that
the CPU profile can use a narrower copy; the paper profile uses the official widths (32, 64, 128).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from tenfold.core.runtime import channels_last


def gaussian_matrix(n_pixels: int, m: int, seed: int) -> torch.Tensor:
    """A (n_pixels, m) measurement matrix with i.i.d. N(0, 1/m) entries from a seeded numpy generator."""
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.normal(0.0, 1.0 / np.sqrt(m), size=(n_pixels, m)).astype(np.float32))


def _encoder(c_in: int, widths: tuple[int, int, int]) -> list[nn.Module]:
    c1, c2, c3 = widths
    return [
        nn.Conv2d(c_in, c1, 3, 1, 1),
        nn.ReLU(),
        nn.BatchNorm2d(c1),
        nn.Conv2d(c1, c2, 4, 2, 1),
        nn.ReLU(),
        nn.Conv2d(c2, c3, 4, 2, 1),
        nn.ReLU(),
        nn.BatchNorm2d(c3),
    ]


def _decoder(c_out: int, widths: tuple[int, int, int]) -> list[nn.Module]:
    c1, c2, c3 = widths
    return [
        nn.ConvTranspose2d(c3, c2, 4, 2, 1),
        nn.ReLU(),
        nn.ConvTranspose2d(c2, c1, 4, 2, 1),
        nn.ReLU(),
        nn.BatchNorm2d(c1),
        nn.ConvTranspose2d(c1, c_out, 3, 1, 1),
        nn.Sigmoid(),
    ]


class ConvAutoencoder(nn.Module):
    """Images (B, C, H, W) in [0, 1] -> latent code of `latent_dim` -> reconstruction; H and W divisible by 4."""

    def __init__(
        self,
        shape: tuple[int, int, int] = (1, 28, 28),
        latent_dim: int = 128,
        widths: tuple[int, int, int] = (32, 64, 128),
    ):
        super().__init__()
        c, h, w = shape
        if h % 4 or w % 4:
            raise ValueError(f"autoencoder needs image sides divisible by 4, got {h}x{w}")
        inner = (widths[2], h // 4, w // 4)
        flat = int(np.prod(inner))
        self.encoder = nn.Sequential(*_encoder(c, widths), nn.Flatten(), nn.Linear(flat, latent_dim), nn.ReLU())
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, flat),
            nn.ReLU(),
            nn.Unflatten(1, inner),
            nn.BatchNorm2d(widths[2]),
            *_decoder(c, widths),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class CSReconstructor(nn.Module):
    """Measurements y = x_flat A (B, m) -> back-projection y A^T reshaped to an image -> conv/deconv net."""

    def __init__(
        self,
        matrix: torch.Tensor,
        shape: tuple[int, int, int] = (1, 28, 28),
        widths: tuple[int, int, int] = (32, 64, 128),
    ):
        super().__init__()
        if matrix.shape[0] != int(np.prod(shape)):
            raise ValueError(f"measurement matrix has {matrix.shape[0]} rows, images have {int(np.prod(shape))} pixels")
        self.shape = tuple(shape)
        self.register_buffer("matrix", matrix.float())
        self.net = nn.Sequential(*_encoder(shape[0], widths), *_decoder(shape[0], widths))

    def measure(self, x: torch.Tensor) -> torch.Tensor:
        """y = x_flat A."""
        return x.flatten(1) @ self.matrix

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.net((y @ self.matrix.T).reshape(y.shape[0], *self.shape))


# ---------------------------------------------------------------------------------------------- face boxes
_NO_BOX = (-1.0, -1.0, -1.0, -1.0)


class HaarFaceBoxes:
    """OpenCV's frontal-face Haar cascade: grey images (B, H, W) in [0, 255] -> the largest box (B, 4) as
    (x1, y1, x2, y2) in input pixels, all -1 when no face is found. `downscale` > 1 detects on a resized image
    (INTER_AREA) and maps the box back, which makes each call several times faster. Picklable (the cascade is
    reloaded by name), so a task on another process or Dask worker can receive it."""

    def __init__(
        self,
        downscale: float = 1.0,
        scale_factor: float = 1.2,
        min_neighbors: int = 3,
        min_size: int = 40,
        cascade: str = "haarcascade_frontalface_default.xml",
    ):
        self.cascade_name = cascade
        self.cascade = self._load(cascade)
        self.downscale, self.scale_factor, self.min_neighbors = float(downscale), scale_factor, min_neighbors
        self.min_size = max(8, int(round(min_size / self.downscale)))

    @staticmethod
    def _load(cascade: str):
        import cv2

        path = cv2.data.haarcascades + cascade
        loaded = cv2.CascadeClassifier(path)
        if loaded.empty():
            raise FileNotFoundError(f"{path}: Haar cascade not found (opencv-python-headless<5 ships them)")
        return loaded

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "cascade"}  # OpenCV's classifier does not pickle

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.cascade = self._load(self.cascade_name)

    def detect_one(self, img: np.ndarray) -> tuple[float, float, float, float]:
        import cv2

        g = np.clip(np.rint(img), 0, 255).astype(np.uint8)
        if self.downscale != 1.0:
            g = cv2.resize(
                g,
                (round(g.shape[1] / self.downscale), round(g.shape[0] / self.downscale)),
                interpolation=cv2.INTER_AREA,
            )
        found = self.cascade.detectMultiScale(
            g, self.scale_factor, self.min_neighbors, minSize=(self.min_size, self.min_size)
        )
        if len(found) == 0:
            return _NO_BOX
        x, y, w, h = max(found, key=lambda b: b[2] * b[3])
        s = self.downscale
        return (x * s, y * s, (x + w) * s, (y + h) * s)

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        arr = batch.detach().cpu().numpy()
        boxes = [self.detect_one(a) for a in arr]
        return torch.tensor(boxes, dtype=torch.float32, device=batch.device)


class MTCNNFaceBoxes:
    """facenet-pytorch's MTCNN (weights ship inside the package), as in the official face-detection experiment:
    grey images (B, H, W) in [0, 255] -> the most probable box (B, 4), all -1 when no face is found."""

    def __init__(self, device: torch.device | str = "cpu", min_face_size: int = 20):
        from facenet_pytorch import MTCNN

        self.mtcnn = MTCNN(device=device, min_face_size=min_face_size, select_largest=False, post_process=False)
        channels_last(self.mtcnn)  # its three small conv nets, 1.7x faster on a CPU core

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        rgb = batch.float().clamp(0, 255).unsqueeze(-1).expand(*batch.shape, 3)
        boxes, _ = self.mtcnn.detect(rgb)
        out = [_NO_BOX if b is None else tuple(float(v) for v in b[0][:4]) for b in boxes]
        return torch.tensor(out, dtype=torch.float32, device=batch.device)


def face_detector(kind: str, device: torch.device | str = "cpu", min_size: int = 40, downscale: float = 1.0):
    """`haar` (OpenCV cascade; the CPU default) or `mtcnn` (facenet-pytorch; the official experiment's detector),
    finding faces of at least `min_size` pixels; `downscale` applies to the cascade only."""
    if kind == "haar":
        return HaarFaceBoxes(downscale=downscale, min_size=min_size)
    if kind == "mtcnn":
        return MTCNNFaceBoxes(device, min_face_size=min_size)
    raise ValueError(f"unknown face detector {kind!r} (haar, mtcnn)")
