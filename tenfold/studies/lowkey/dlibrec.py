"""dlib's ResNet face recognizer (128-d descriptors): the third-party black box the filter must fool.

The model files ship inside the `face-recognition-models` package; the folder is located with
`importlib.util.find_spec` because importing that package needs setuptools' pkg_resources.
Detection is dlib's HOG frontal detector; an image where it finds no face falls back to the whole image
as the face box (counted, so a detection failure is never silently a recognition success or failure).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np


class DlibUnavailable(RuntimeError):
    pass


def model_dir() -> Path:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise DlibUnavailable("package face-recognition-models is not installed (it ships dlib's model files)")
    folder = Path(list(spec.submodule_search_locations)[0]) / "models"
    if not (folder / "dlib_face_recognition_resnet_model_v1.dat").exists():
        raise DlibUnavailable(f"{folder}: dlib_face_recognition_resnet_model_v1.dat missing")
    return folder


class DlibRecognizer:
    """HOG detection + 5-point shape + ResNet descriptor, as `face_recognition` does it."""

    def __init__(self, upsample: int = 1):
        try:
            import dlib
        except ImportError as e:
            raise DlibUnavailable(f"dlib is not importable ({e}); install dlib-bin") from None
        folder = model_dir()
        self.dlib, self.upsample = dlib, upsample
        self.detector = dlib.get_frontal_face_detector()
        self.shape = dlib.shape_predictor(str(folder / "shape_predictor_5_face_landmarks.dat"))
        self.encoder = dlib.face_recognition_model_v1(str(folder / "dlib_face_recognition_resnet_model_v1.dat"))

    def describe(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B, H, W, 3) uint8 -> (descriptors (B, 128), detected mask (B,))."""
        out, found = [], []
        for img in images:
            img = np.ascontiguousarray(img, dtype=np.uint8)
            dets = self.detector(img, self.upsample)
            if len(dets):
                box = max(dets, key=lambda r: r.area())
            else:
                box = self.dlib.rectangle(0, 0, img.shape[1] - 1, img.shape[0] - 1)
            shape = self.shape(img, box)
            out.append(np.asarray(self.encoder.compute_face_descriptor(img, shape), np.float64))
            found.append(len(dets) > 0)
        return np.stack(out), np.array(found)


class DlibJudge:
    """dlib's recognizer in the registry: a black box (no gradients) with its own detection (HOG) and alignment
    (5-point shape -> 150x150 chip, dlib's template); `describe` returns L2-normalised descriptors."""

    name, role, size = "dlib", "judge", (150, 150)
    template = "dlib's own: get_face_chip of the 5-point shape, 150x150, padding 0.25"
    normalisation = "dlib's own (the ResNet takes the uint8 chip)"
    source = "face-recognition-models: dlib_face_recognition_resnet_model_v1.dat"
    differentiable = False

    def __init__(self, upsample: int = 1):
        self.rec = DlibRecognizer(upsample)

    def describe(self, photos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B, H, W, 3) uint8 photos -> (L2-normalised descriptors (B, 128), HOG detected a face (B,))."""
        d, found = self.rec.describe(photos)
        return d / np.linalg.norm(d, axis=1, keepdims=True).clip(1e-12), found
