"""Which faces do what, and how the filtered ones are measured.

CelebA crops (`faces/celeba_crops`: 250x250 LFW-style photos of 298 identities): evaluation identities (a clean
gallery and the probes that are filtered), distractor identities (one clean gallery photo each), and the remaining
identities, disjoint from both, which train the surrogates. The AT&T faces (40 subjects x 10 grey 92x112 photos)
give the second, smaller table. Detected landmarks of every photo are computed once (stage `lowkey_faces`) and
cached; a photo without a detected face is never a gallery photo or a probe.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tenfold.studies.lowkey.params import LowKeyAtt, LowKeyData


@dataclass
class Photos:
    """A face set on disk: relative paths under `root` and integer identity labels."""

    root: Path
    paths: list[str]
    identities: np.ndarray  # (N,) int64
    source: str

    def __len__(self) -> int:
        return len(self.paths)

    def load(self, idx) -> np.ndarray:
        """(n, H, W, 3) uint8 RGB photos (all of one size)."""
        from PIL import Image

        out = []
        for i in np.atleast_1d(idx):
            with Image.open(self.root / self.paths[int(i)]) as im:
                out.append(np.asarray(im.convert("RGB"), np.uint8))
        return np.stack(out)


def load_celeba(shared_root: str | Path, identities_max: int | None = None) -> Photos:
    """The CelebA crops through the data-source table (`celeba_crops`); `identities_max` keeps the photos of the
    first k identities (by id)."""
    from tenfold.components.data.sources import DataCorrupt, locate, portable

    folder = locate("celeba_crops", shared_root)
    with open(folder / "identities.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or {"path", "identity"} - set(rows[0]):
        raise DataCorrupt(f"{folder / 'identities.csv'}: expected columns path,identity")
    rows.sort(key=lambda r: r["path"])
    if identities_max is not None:
        keep = set(sorted({int(r["identity"]) for r in rows})[:identities_max])
        rows = [r for r in rows if int(r["identity"]) in keep]
    return Photos(
        folder,
        [r["path"] for r in rows],
        np.array([int(r["identity"]) for r in rows], np.int64),
        f"files:{portable(folder)}",
    )


def load_att_photos(shared_root: str | Path, subjects: int | None = None) -> tuple[np.ndarray, ...]:
    """AT&T faces through the data-source table, the first `subjects` subjects (None: all 40): (RGB uint8
    (N, 112, 92, 3), subjects 0.., numbers 1.., source)."""
    from tenfold.components.data.faces import load_att
    from tenfold.components.data.sources import locate

    faces = load_att([locate("att_faces", shared_root).parent])
    keep = faces.subjects < (subjects if subjects is not None else faces.subjects.max() + 1)
    return faces.rgb()[keep], faces.subjects[keep], faces.numbers[keep], faces.source


@dataclass
class Split:
    """Indices into the photos (CelebA) of each role; identities are disjoint across eval, distractor, train."""

    eval_ids: np.ndarray
    distractor_ids: np.ndarray
    train_ids: np.ndarray
    gallery: np.ndarray  # clean gallery: `gallery_per_identity` per evaluation identity, then one per distractor
    probes: np.ndarray  # filtered: `probes_per_identity` per evaluation identity (identity-major order)
    auc: np.ndarray  # clean photos of the evaluation identities for the verification AUC
    train: np.ndarray  # photos of the training identities


def split(identities: np.ndarray, found: np.ndarray, d: LowKeyData, seed: int) -> Split:
    """Draw the roles with a generator seeded by `seed`; only photos with a detected face take part."""
    rng = np.random.default_rng(seed)
    ids = np.unique(identities)
    by_id = {int(i): np.flatnonzero((identities == i) & found) for i in ids}
    need = max(d.min_photos, d.gallery_per_identity + d.probes_per_identity)
    cand = np.array([i for i in ids if len(by_id[int(i)]) >= need], np.int64)
    if len(cand) < d.eval_identities:
        raise ValueError(
            f"lowkey.data.eval_identities={d.eval_identities}: only {len(cand)} identities have "
            f">= {need} photos with a detected face"
        )
    eval_ids = np.sort(rng.permutation(cand)[: d.eval_identities])
    rest = rng.permutation(np.array([i for i in ids if i not in set(eval_ids.tolist()) and len(by_id[int(i)])]))
    if len(rest) < d.distractors + 2:
        raise ValueError(f"lowkey.data.distractors={d.distractors}: only {len(rest)} other identities")
    distractor_ids = np.sort(rest[: d.distractors])
    train_ids = np.sort(np.array([i for i in rest[d.distractors :] if len(by_id[int(i)]) >= 2], np.int64))
    if d.train_identities_max is not None:
        train_ids = np.sort(rng.permutation(train_ids)[: d.train_identities_max])
    gallery, probes, auc, train = [], [], [], []
    for i in eval_ids:
        photos = rng.permutation(by_id[int(i)])
        gallery += photos[: d.gallery_per_identity].tolist()
        probes += photos[d.gallery_per_identity : d.gallery_per_identity + d.probes_per_identity].tolist()
        auc += photos[: max(d.auc_photos, d.gallery_per_identity + d.probes_per_identity)].tolist()
    for i in distractor_ids:
        gallery.append(int(rng.choice(by_id[int(i)])))
    for i in train_ids:
        train += np.sort(rng.permutation(by_id[int(i)])[: d.train_photos_max]).tolist()
    arr = lambda v: np.array(v, np.int64)  # noqa: E731
    return Split(eval_ids, distractor_ids, train_ids, arr(gallery), arr(probes), arr(auc), arr(train))


def att_split(subjects: np.ndarray, numbers: np.ndarray, found: np.ndarray, a: LowKeyAtt):
    """AT&T: gallery = image `gallery_number` of every subject, probes = the next `probes_per_subject` detected
    images of that subject. Returns (gallery indices, probe indices)."""
    gallery, probes = [], []
    for s in np.unique(subjects):
        mine = np.flatnonzero(subjects == s)
        g = mine[numbers[mine] == a.gallery_number]
        if not len(g):
            continue
        others = [i for i in mine[np.argsort(numbers[mine])] if i != g[0] and found[i]]
        gallery.append(int(g[0]))
        probes += others[: a.probes_per_subject]
    return np.array(gallery, np.int64), np.array(probes, np.int64)


def face_boxes(boxes: np.ndarray, image_hw: tuple[int, int]) -> np.ndarray:
    """Detected face boxes (x1, y1, x2, y2) -> integer (top, bottom, left, right) inside the image (at least 7 px
    each way, the SSIM window); a missing box (NaN) becomes the whole photo."""
    h, w = image_hw
    out = []
    for b in np.asarray(boxes, np.float64).reshape(-1, 4):
        if not np.isfinite(b).all():
            out.append((0, h, 0, w))
            continue
        left, top = int(np.clip(np.floor(b[0]), 0, w - 7)), int(np.clip(np.floor(b[1]), 0, h - 7))
        right, bottom = int(np.clip(np.ceil(b[2]), left + 7, w)), int(np.clip(np.ceil(b[3]), top + 7, h))
        out.append((top, bottom, left, right))
    return np.array(out, np.int64)


def quality(clean: np.ndarray, filtered: np.ndarray, boxes: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per photo: SSIM of the face region (the clean photo's detected face box; scikit-image, 7x7 window, RGB),
    SSIM of the full photo, and PSNR (dB) of the full photo, of uint8 photos as saved."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    boxes = face_boxes(np.full((len(clean), 4), np.nan) if boxes is None else boxes, clean.shape[1:3])
    face, full, psnr = [], [], []
    for a, b, (t, bt, lf, rt) in zip(clean, filtered, boxes):
        face.append(structural_similarity(a[t:bt, lf:rt], b[t:bt, lf:rt], channel_axis=-1, data_range=255))
        full.append(structural_similarity(a, b, channel_axis=-1, data_range=255))
        psnr.append(peak_signal_noise_ratio(a, b, data_range=255) if not np.array_equal(a, b) else np.inf)
    return {"face_ssim": np.array(face), "ssim": np.array(full), "psnr": np.array(psnr)}


FACES_FILE = "faces.npz"  # under <data_root>/lowkey: written by stage `lowkey_faces`


@dataclass
class Landmarks:
    """Cached MTCNN detections (the most confident face) of every photo of a face set."""

    points: np.ndarray  # (N, 5, 2) float32, NaN = no face
    boxes: np.ndarray  # (N, 4) x1 y1 x2 y2, NaN = no face
    probs: np.ndarray  # (N,) 0 = no face

    @property
    def found(self) -> np.ndarray:
        return self.probs > 0

    def head(self, n: int) -> Landmarks:
        """The first `n` photos' detections (the AT&T cache holds every subject; a run may use the first few)."""
        if n > len(self.probs):
            raise ValueError(f"{n} photos but only {len(self.probs)} cached detections: rerun stage lowkey_faces")
        return Landmarks(self.points[:n], self.boxes[:n], self.probs[:n])

    def take(self, idx) -> list:
        """The landmarks of photos `idx` as a list ((5, 2) array, or None without a face)."""
        from tenfold.studies.lowkey.pipeline import as_points

        return as_points(self.points[np.asarray(idx)])


def read_faces(path: str | Path, celeba: Photos) -> tuple[Landmarks, Landmarks]:
    """The cached detections (CelebA, AT&T) of stage `lowkey_faces`; an error if they belong to other photos."""
    from tenfold.core.artifacts import load_npz
    from tenfold.core.errors import ArtifactError

    z = load_npz(
        path, ["celeba_paths", "celeba_points", "celeba_boxes", "celeba_probs", "att_points", "att_boxes", "att_probs"]
    )
    if z["celeba_paths"].tolist() != celeba.paths:
        raise ArtifactError(Path(path), "lists other CelebA photos than the data source: rerun stage lowkey_faces")
    return (
        Landmarks(z["celeba_points"], z["celeba_boxes"], z["celeba_probs"]),
        Landmarks(z["att_points"], z["att_boxes"], z["att_probs"]),
    )
