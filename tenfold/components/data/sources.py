"""Every dataset and model file a study reads, in one table: where it comes from online, where it lies offline, and
how to check it. Nothing outside this table knows where the shared offline data is.

The offline root is `common.shared_data` (default `../shared/data`, relative to the project root), overridden by
the environment variable `TENFOLD_SHARED_DATA`. Loaders ask `locate(name, shared_root)` for a source's offline
location; a missing source fails before any compute with a message naming it and the ways to get it.
`tenfold data` lists every source as present / missing / corrupt.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from tenfold.core.errors import TenfoldError

ENV_VAR = "TENFOLD_SHARED_DATA"


class DataMissing(TenfoldError, FileNotFoundError):
    """A data source the run needs is not where it should be (message: what, where, how to get it)."""


class DataCorrupt(TenfoldError):
    """A data source is present but fails its check (wrong checksum, missing files)."""


@dataclass(frozen=True)
class Source:
    name: str
    what: str
    online: str  # how to get it online (the path a loader takes first when it can), or "" if none
    offline: str  # location relative to the shared-data root
    used_by: tuple[str, ...]
    sha256: str = ""  # for a single file
    expect: tuple[str, ...] = ()  # files that must exist inside a folder (relative paths)
    min_files: int = 0  # at least this many files under the folder (recursively)

    def how_to_get(self) -> str:
        ways = [f"put it at <shared data>/{self.offline} (set {ENV_VAR} or common.shared_data to that folder)"]
        if self.online:
            ways.insert(0, self.online)
        return "; or ".join(ways)


SOURCES: dict[str, Source] = {s.name: s for s in [
    Source("cifar10", "CIFAR-10 (25,000 train / 10,000 test PNGs, torchvision ImageFolder layout)",
           "torchvision CIFAR10 under <data_root>/cifar10 (download with common.allow_download: true)", "cifar10",
           ("security", "augmentation", "secure_release", "depth", "gradinit", "minimax"),
           expect=tuple(f"{split}/{c}" for split in ("train", "test") for c in (
               "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")),
           min_files=35000),
    Source("att_faces", "AT&T (ORL) faces, 40 subjects x 10 grey 92x112 photos", "", "faces/att_faces",
           ("lowkey", "secure_release", "smoothing"), expect=("s1/1.pgm", "s40/10.pgm"), min_files=400),
    Source("celeba_crops", "CelebA identities: 6,014 250x250 crops of 298 identities", "", "faces/celeba_crops",
           ("lowkey",), expect=("identities.csv",), min_files=6000),
    Source("utkface64", "UTKFace: 23,056 aligned 64x64 faces with age, gender and race", "", "faces/utkface64",
           ("fairness",), expect=("labels.csv",), min_files=23000),
    Source("mobilefacenet_ms1m", "MobileFaceNet trained on MS1M-ArcFace (112x112, 128-d)",
           "foamliu/MobileFaceNet weights/mobilefacenet.pt", "models/mobilefacenet/ms1m_foamliu.pt", ("lowkey",),
           sha256="90a00ba1d8b0b688af3deb731ed53dca582e6106805d1bc3cfdef55f570493f4"),
    Source("mobilefacenet_casia", "MobileFaceNet trained on CASIA-WebFace (112x96, 128-d)",
           "Xiaoccer/MobileFaceNet_Pytorch model/best/068.ckpt", "models/mobilefacenet/casia_xiaoccer.ckpt",
           ("lowkey",), sha256="e839247cdbdfc023fb7cadeaf53a4549d50c8fc24ad154c02e35920ea8910d99"),
    Source("openreview_dumps", "ICLR 2017-2020 OpenReview dumps (paperlists) and citation counts",
           "the live OpenReview API (openreview.source: live)", "openreview", ("openreview",),
           expect=("iclr2017.json", "iclr2018.json", "iclr2019.json", "iclr2020.json"), min_files=4),
]}


def shared_root(configured: str | Path = "../shared/data", project_root: str | Path = ".") -> Path:
    """The shared offline-data folder: $TENFOLD_SHARED_DATA, else `configured` resolved against the project."""
    env = os.environ.get(ENV_VAR)
    path = Path(env) if env else Path(configured)
    return (path if path.is_absolute() else Path(project_root) / path).resolve()


def portable(path: str | Path) -> str:
    """`path` as a provenance label that does not name this machine: relative to the working directory (the
    project root in every stage, so `../shared/data/cifar10` in each checkout beside the shared folder), or
    absolute when it lies elsewhere on the disk (more than two levels up)."""
    full = Path(path).resolve()
    rel = os.path.relpath(full)
    return str(full) if rel.startswith(os.path.join(*[os.pardir] * 3)) else rel


def get(name: str) -> Source:
    if name not in SOURCES:
        raise KeyError(f"unknown data source {name!r} (known: {', '.join(SOURCES)})")
    return SOURCES[name]


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def check(name: str, root: str | Path, thorough: bool = True) -> tuple[str, str]:
    """("present" | "missing" | "corrupt", detail) of source `name` under shared root `root`."""
    s = get(name)
    path = Path(root) / s.offline
    if not path.exists():
        return "missing", str(path)
    if s.sha256:
        if thorough and sha256_file(path) != s.sha256:
            return "corrupt", f"{path}: SHA-256 differs from {s.sha256[:12]}..."
        return "present", str(path)
    absent = [e for e in s.expect if not (path / e).exists()]
    if absent:
        return "corrupt", f"{path}: missing {', '.join(absent[:3])}{' ...' if len(absent) > 3 else ''}"
    if s.min_files and thorough:
        n = sum(1 for p in path.rglob("*") if p.is_file())
        if n < s.min_files:
            return "corrupt", f"{path}: {n} files, expected at least {s.min_files}"
    return "present", str(path)


def locate(name: str, root: str | Path, thorough: bool = False) -> Path:
    """The offline location of `name` under shared root `root`; a clear error when it is missing or fails its
    check (file checksums are always verified; folder file counts only when `thorough`)."""
    s = get(name)
    state, detail = check(name, root, thorough=thorough or bool(s.sha256))
    if state == "missing":
        raise DataMissing(f"data source `{name}` ({s.what}) not found at {detail}; to get it: {s.how_to_get()}")
    if state == "corrupt":
        raise DataCorrupt(f"data source `{name}` is corrupt: {detail}; restore it from its origin ({s.how_to_get()})")
    return Path(root) / s.offline
