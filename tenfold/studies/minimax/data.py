"""The images of study `minimax`: CIFAR-10 from the arrays of DVC stage `build_cifar10`, or the digits."""

from __future__ import annotations

from pathlib import Path

from tenfold.components.data import cifar10
from tenfold.components.data.images import ImageData
from tenfold.components.data.images import load as load_images
from tenfold.components.victims import augment_batch  # noqa: F401  (crop + flip, the one copy; used by train)
from tenfold.studies.minimax.params import MinimaxData


def load(cfg: MinimaxData, data_root: str | Path, seed: int) -> ImageData:
    """CIFAR-10 from `<data_root>/cifar10` (written by `build_cifar10`; its own train/test split, `source` from
    its manifest; missing arrays are an error naming that stage), or the digits with their seeded split; then a
    class-stratified, seeded subset of `n_train` / `n_test` images."""
    full = (
        cifar10.load(Path(data_root) / "cifar10")
        if cfg.dataset == "cifar10"
        else load_images(cfg.dataset, data_root, seed)
    )
    return full.subset(cfg.n_train, cfg.n_test, seed)
