"""Faces: the AT&T (ORL) database (40 subjects x 10 grey 92x112 images) from the data root or ../shared/data.
The one place that locates it (lowkey, secure_release and smoothing all load it here).

    load_att(roots) -> FaceData(images uint8 (N, 112, 92), subject ids 0.., image numbers 1.., source)
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tenfold.components.data.sources import portable


class FaceDataError(RuntimeError):
    pass


@dataclass
class FaceData:
    images: np.ndarray  # (N, H, W) uint8 grey
    subjects: np.ndarray  # (N,) int64, 0-based
    numbers: np.ndarray  # (N,) int64, image number 1..10 within a subject
    source: str

    def rgb(self) -> np.ndarray:
        """(N, H, W, 3) uint8, grey replicated (what RGB face models expect)."""
        return np.repeat(self.images[..., None], 3, axis=-1)


def _read_pgm(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("L"), dtype=np.uint8)


def find_att(roots: list[str | Path]) -> Path:
    for r in roots:
        for cand in (Path(r) / "att_faces", Path(r) / "faces" / "att_faces"):
            if (cand / "s1" / "1.pgm").exists():
                return cand
    raise FaceDataError(f"AT&T faces not found under any of {[str(r) for r in roots]} "
                        "(expected att_faces/sN/M.pgm; ../shared/data/faces/att_faces ships them)")


def load_att(roots: list[str | Path]) -> FaceData:
    """Every image of the AT&T database under the first root that has it; subjects and images per subject are
    read from the folder (`sN/M.pgm`), so a subset or a larger copy loads as it is."""
    folder = find_att(roots)
    subjects = sorted((d for d in folder.iterdir() if d.is_dir() and d.name[1:].isdigit() and d.name[0] == "s"),
                      key=lambda d: int(d.name[1:]))
    imgs, subj, num = [], [], []
    for k, d in enumerate(subjects):
        files = sorted((f for f in d.glob("*.pgm") if f.stem.isdigit()), key=lambda f: int(f.stem))
        if not files:
            raise FaceDataError(f"{d}: no images (expected {d}/1.pgm ...)")
        for f in files:
            try:
                imgs.append(_read_pgm(f))
            except Exception as e:
                raise FaceDataError(f"{f}: unreadable image ({e})") from None
            subj.append(k)
            num.append(int(f.stem))
    shapes = {im.shape for im in imgs}
    if len(shapes) != 1:
        raise FaceDataError(f"{folder}: images of different sizes {sorted(shapes)}")
    return FaceData(np.stack(imgs), np.array(subj, np.int64), np.array(num, np.int64), f"files:{portable(folder)}")
