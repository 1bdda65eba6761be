"""Faces: the AT&T (ORL) database (40 subjects x 10 grey 92x112 images) from the data root or ../shared/data.

    load_att(roots) -> FaceData(images uint8 (400, 112, 92), subject ids 0..39, image numbers 1..10, source)
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


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
    folder = find_att(roots)
    imgs, subj, num = [], [], []
    for s in range(1, 41):
        for m in range(1, 11):
            p = folder / f"s{s}" / f"{m}.pgm"
            if not p.exists():
                raise FaceDataError(f"{p}: missing image of the AT&T database")
            try:
                imgs.append(_read_pgm(p))
            except Exception as e:
                raise FaceDataError(f"{p}: unreadable image ({e})") from None
            subj.append(s - 1)
            num.append(m)
    return FaceData(np.stack(imgs), np.array(subj, np.int64), np.array(num, np.int64), f"files:{folder}")
