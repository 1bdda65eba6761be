"""The AT&T face-identification experiment's data: faces resized to small grey squares, split per subject."""

from __future__ import annotations

import numpy as np
import torch

from tenfold.components.data.faces import FaceData


def face_tensors(faces: FaceData, side: int, train_per_subject: int, device="cpu"):
    """AT&T faces resized to side x side grey; the first `train_per_subject` images of each subject train.
    Returns (x_train, y_train, x_test, y_test) on `device`."""
    imgs = torch.from_numpy(faces.images.astype(np.float32) / 255.0)[:, None]
    imgs = torch.nn.functional.interpolate(
        imgs, size=(side, side), mode="bilinear", antialias=True, align_corners=False
    ).clamp(0, 1)
    tr = torch.from_numpy(faces.numbers <= train_per_subject)
    y = torch.from_numpy(faces.subjects)
    return imgs[tr].to(device), y[tr].to(device), imgs[~tr].to(device), y[~tr].to(device)


def subject_count(faces: FaceData) -> int:
    """Number of identities (classes) in the loaded copy of the database (40 for the full AT&T set)."""
    return int(faces.subjects.max()) + 1 if len(faces.subjects) else 0
