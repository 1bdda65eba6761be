"""Fixed face features from a pretrained recognizer, for the classical baseline: each 64x64 UTKFace face (already
aligned and cropped by UTKFace) resized to the recognizer's input and mapped to its L2-normalised embedding. The
paper contrasts deep nets, which overfit fairness constraints, with classical models on fixed features; an
embedding from a net trained on millions of other faces is the strongest fixed feature this project has offline."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F

from tenfold.components.models.facemodels import FaceModel
from tenfold.studies.fairness.data import FairData
from tenfold.studies.fairness.faces import raw_faces


def embed(data: FairData, model: FaceModel, batch: int = 32) -> FairData:
    """`data` with every face replaced by `model`'s embedding (named `<task>+<model>`); labels, groups and splits
    unchanged. Small batches: a MobileFaceNet's activations for 256 faces at 112x112 run to gigabytes, and
    allocating them costs more than the forward pass."""
    model = model.eval()
    out = {}
    with torch.no_grad():
        for split in data.splits:
            faces, parts = raw_faces(data, split), []
            for i in range(0, len(faces), batch):
                x = torch.from_numpy(faces[i : i + batch]).float() / 255.0
                x = F.interpolate(x, size=model.size, mode="bilinear", align_corners=False)
                parts.append(model(x).numpy())
            out[split] = np.concatenate(parts).astype(np.float32)
    return dataclasses.replace(
        data,
        name=f"{data.name}+{model.name}",
        x_train=out["train"],
        x_test=out["test"],
        x_val=out.get("val"),
        source=f"{data.source}; {model.name} embeddings of the 64x64 faces",
        raw_path=None,
        raw_rows=None,
    )
