"""Which AT&T faces do what: training identities for the surrogates, a gallery and probes of the disjoint
evaluation identities, the probe subset of the trade-off sweep; and the image quality of filtered probes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tenfold.components.data.faces import FaceData
from tenfold.studies.lowkey.params import LowKeyData


@dataclass
class Split:
    """Boolean masks over the loaded faces."""

    train: np.ndarray  # identities 0..k-1: train the surrogates
    gallery: np.ndarray  # one clean image (`gallery_number`) per evaluation identity
    probes: np.ndarray  # the other images of the evaluation identities (up to `probes_per_subject` each)
    train_subjects: int
    eval_subjects: int

    @property
    def used(self) -> np.ndarray:
        return self.train | self.gallery | self.probes


def split(faces: FaceData, d: LowKeyData) -> Split:
    """Training identities are the first `train_subjects`; evaluation identities the next `eval_subjects` (null:
    all the others in the folder). The subject and image counts come from the loaded data."""
    n_subjects = int(faces.subjects.max()) + 1 if len(faces.subjects) else 0
    k = d.train_subjects
    if n_subjects - k < 2:
        raise ValueError(
            f"lowkey.data.train_subjects={k}: the faces folder has {n_subjects} subjects, so fewer "
            "than 2 would remain for evaluation"
        )
    n_eval = n_subjects - k if d.eval_subjects is None else min(d.eval_subjects, n_subjects - k)
    train = faces.subjects < k
    ev = (faces.subjects >= k) & (faces.subjects < k + n_eval)
    gallery = ev & (faces.numbers == d.gallery_number)
    others = [n for n in sorted(set(faces.numbers.tolist())) if n != d.gallery_number][: d.probes_per_subject]
    return Split(train, gallery, ev & np.isin(faces.numbers, others), k, n_eval)


def sweep_subset(faces: FaceData, probes: np.ndarray, per_subject: int) -> tuple[np.ndarray, np.ndarray]:
    """The sweep's probes: the first `per_subject` probe image numbers of each evaluation identity. Returns the
    mask over all faces and the mask over the probes (to read the main run's filtered images off)."""
    numbers = sorted(set(faces.numbers[probes].tolist()))[:per_subject]
    sub = probes & np.isin(faces.numbers, numbers)
    return sub, np.isin(np.flatnonzero(probes), np.flatnonzero(sub))


def quality(clean: np.ndarray, filtered: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-image SSIM and PSNR (dB) of filtered uint8 RGB images against the originals (as saved)."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    ssims = np.array([structural_similarity(a, b, channel_axis=-1, data_range=255) for a, b in zip(clean, filtered)])
    psnrs = np.array([peak_signal_noise_ratio(a, b, data_range=255) for a, b in zip(clean, filtered)])
    return ssims, psnrs
