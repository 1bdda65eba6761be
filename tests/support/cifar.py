"""CIFAR-10 slices for tests: no test reads the 35,000 files of the offline copy.

`cifar_folder(dst)` writes a small ImageFolder copy (the first images of each class of the shared copy; random
32x32 images where it is absent); `shared_with_cifar_slice(dst)` makes a shared-data root that links every entry
of the real one except `cifar10`, which is such a slice, so stage `build_cifar10` runs for real on it."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from tenfold.components.data import cifar10

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data"


def cifar_folder(dst: Path, train_per_class: int = 10, test_per_class: int = 5) -> Path:
    """<dst>/cifar10/{train,test}/<class>/*.png; returns <dst>/cifar10."""
    rng = np.random.default_rng(0)
    for split, n in (("train", train_per_class), ("test", test_per_class)):
        for c in cifar10.CLASSES:
            d = dst / "cifar10" / split / c
            d.mkdir(parents=True, exist_ok=True)
            real = sorted((SHARED / "cifar10" / split / c).glob("*.png"))[:n] if SHARED.exists() else []
            for i in range(n):
                if i < len(real):
                    shutil.copy(real[i], d / real[i].name)
                else:
                    Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(d / f"{i}.png")
    return dst / "cifar10"


def shared_with_cifar_slice(dst: Path, train_per_class: int = 10, test_per_class: int = 5) -> Path:
    """A shared-data root at `dst`: links to every entry of the real one, and a CIFAR-10 slice; returns `dst`."""
    dst.mkdir(parents=True, exist_ok=True)
    if SHARED.exists():
        for entry in SHARED.iterdir():
            if entry.name != "cifar10":
                (dst / entry.name).symlink_to(entry)
    cifar_folder(dst, train_per_class, test_per_class)
    return dst


def built_cifar_slice(root: Path, train_per_class: int = 10, test_per_class: int = 5) -> dict:
    """<root>/data/cifar10 as stage build_cifar10 writes it (the real `cifar10.build`), from a slice made under
    <root>/slice; returns the build's manifest."""
    cifar_folder(root / "slice", train_per_class, test_per_class)
    return cifar10.build(root / "data" / "cifar10", root / "data", root / "slice")
