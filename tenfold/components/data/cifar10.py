"""CIFAR-10, built once into arrays (DVC stage `build_cifar10`) and read by every study that trains on it.

Sources, tried in order and never mixed (one source gives both splits):
1. torchvision's `CIFAR10` under `<data_root>/cifar10` (the real pickled batches; downloaded there only when
   `common.allow_download` is true);
2. the offline `ImageFolder` copy (data source `cifar10`: `train/<class>/*.png`, `test/<class>/*.png`), read with
   torchvision's `ImageFolder`, its class order checked against torchvision's CIFAR-10 classes.
A folder with a missing class, an image that is not 32x32 RGB or a truncated PNG fails before any training with a
message naming the file.

    build(out_dir, data_root, shared_root, allow_download) -> manifest (source, counts, md5 of the arrays)
    load(out_dir) -> ImageData (float32 in [0, 1], NCHW) with `source` from the manifest
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from tenfold.components.data import sources
from tenfold.components.data.images import DataUnavailable, ImageData
from tenfold.core.errors import ArtifactError
from tenfold.core.runtime import atomic_savez, atomic_write_json, md5_file

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
ARRAYS, MANIFEST = "cifar10.npz", "manifest.json"
READ_THREADS = 4  # image files read at once (I/O-bound on a cold cache)


def _from_torchvision(root: Path, allow_download: bool):
    import torchvision

    folder = root / "cifar10"
    try:
        splits = [torchvision.datasets.CIFAR10(str(folder), train=t, download=allow_download) for t in (True, False)]
    except (RuntimeError, OSError) as e:  # torchvision: "Dataset not found or corrupted"
        detail = str(e).splitlines()[0] if str(e) else type(e).__name__
        brief = "not found" if "not found" in detail.lower() else detail
        raise DataUnavailable(f"torchvision CIFAR10 under {sources.portable(folder)}: {brief}") from None
    if list(splits[0].classes) != list(CLASSES):
        raise DataUnavailable(f"{folder}: unexpected CIFAR-10 classes {splits[0].classes}")
    out = []
    for ds in splits:
        out += [np.ascontiguousarray(np.asarray(ds.data, np.uint8).transpose(0, 3, 1, 2)),
                np.asarray(ds.targets, np.int64)]
    return (*out, f"torchvision:{sources.portable(folder)}")


def _strict_loader(path: str):
    """Decode one PNG fully; anything but a 32x32 RGB image is an error naming the file."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
            if im.size != (32, 32) or im.mode != "RGB":
                raise sources.DataCorrupt(f"{path}: a {im.size[0]}x{im.size[1]} {im.mode} image; CIFAR-10 images are "
                                          "32x32 RGB")
            return np.asarray(im, np.uint8)
    except sources.DataCorrupt:
        raise
    except Exception as e:  # noqa: BLE001 - PIL raises OSError, SyntaxError, ValueError for broken files
        raise sources.DataCorrupt(f"{path}: unreadable or truncated image ({type(e).__name__}: {e})") from None


def _read_split(folder: Path):
    from torchvision.datasets import ImageFolder

    present = sorted(d.name for d in folder.iterdir() if d.is_dir()) if folder.is_dir() else []
    missing = [c for c in CLASSES if c not in present]
    if missing or len(present) != len(CLASSES):
        raise sources.DataCorrupt(f"{folder}: class folders {present}; expected exactly {list(CLASSES)} "
                                  f"(missing: {missing})")
    ds = ImageFolder(str(folder), loader=_strict_loader)
    if tuple(ds.classes) != CLASSES:  # ImageFolder sorts names; torchvision's order must come out
        raise sources.DataCorrupt(f"{folder}: class order {ds.classes} differs from torchvision's {CLASSES}")
    # a few threads overlap the reads of 35,000 small files (the first, cold read of the shared copy took 30 s in
    # one thread); map keeps the sample order, and the first failing file raises its own error
    with ThreadPoolExecutor(READ_THREADS) as pool:
        x = np.stack(list(pool.map(_strict_loader, [p for p, _ in ds.samples]))).transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x), np.asarray([t for _, t in ds.samples], np.int64)


def _from_folder(root: Path):
    xtr, ytr = _read_split(root / "train")
    xte, yte = _read_split(root / "test")
    return xtr, ytr, xte, yte, f"imagefolder:{sources.portable(root)}"


def build(out_dir: str | Path, data_root: str | Path, shared_root: str | Path, allow_download: bool = False) -> dict:
    """Read CIFAR-10 from the first available source and write `cifar10.npz` (uint8 NCHW) + `manifest.json`."""
    out_dir = Path(out_dir)
    try:
        xtr, ytr, xte, yte, source = _from_torchvision(Path(data_root), allow_download)
    except DataUnavailable as e:
        folder = sources.locate("cifar10", shared_root)
        xtr, ytr, xte, yte, source = _from_folder(folder)
        source += f" ({e})"

    atomic_savez(out_dir / ARRAYS, compress=False, x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    manifest = {"source": source, "classes": list(CLASSES), "n_train": int(len(ytr)), "n_test": int(len(yte)),
                "train_per_class": np.bincount(ytr, minlength=10).tolist(), "md5": md5_file(out_dir / ARRAYS)}
    atomic_write_json(out_dir / MANIFEST, manifest)
    return manifest


def load(out_dir: str | Path) -> ImageData:
    """The arrays `build` wrote, as float32 images in [0, 1]; a missing or corrupt file names the stage."""
    out_dir = Path(out_dir)
    path, man = out_dir / ARRAYS, out_dir / MANIFEST
    if not path.exists() or not man.exists():
        raise ArtifactError(path, "CIFAR-10 arrays not built yet; run `dvc repro build_cifar10` "
                                  "(or `tenfold run build_cifar10`)")
    try:
        manifest = json.loads(man.read_text())
        with np.load(path) as z:
            arrays = {k: z[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except Exception as e:  # noqa: BLE001 - zipfile/numpy raise many types for a truncated file
        raise ArtifactError(path, f"corrupt or truncated ({type(e).__name__}); rebuild it with "
                                  "`dvc repro build_cifar10`") from None
    f = lambda a: (a.astype(np.float32) / 255.0)
    return ImageData("cifar10", f(arrays["x_train"]), arrays["y_train"], f(arrays["x_test"]), arrays["y_test"], 10,
                     manifest["source"])
