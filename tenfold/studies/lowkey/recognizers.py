"""The face-model registry: every recognizer of the study behind one interface (aligned crop in [0, 1] ->
L2-normalised embedding, with its input size, alignment template and normalisation; `facemodels.FaceModel`),
and what is done with them: embedding photos through detection + alignment, verification AUC, rank-k.

Names: `ms1m` and `casia` (the pretrained MobileFaceNets, `facemodels.PRETRAINED`), the surrogates trained here
(`lowkey.surrogates[*].name`, saved together in one weights file by stage `lowkey_surrogates`), and `dlib`
(`dlibrec.DlibJudge`, black box: its own detection and alignment, no gradients).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from tenfold.components.models.facemodels import (
    PRETRAINED,
    FaceModel,
    WeightsError,
    build,
    load_pretrained,
    load_strict,
    surrogate_spec,
)
from tenfold.core.runtime import atomic_torch_save, atomic_write_json
from tenfold.core.seeds import isolated
from tenfold.studies.lowkey.pipeline import thetas, warp

CPU_FILE = "surrogates_cpu.json"  # {surrogate: training CPU seconds}, beside the weights; not a lineage input


def save_surrogates(path: str | Path, models: dict[str, FaceModel], meta: dict[str, dict]) -> Path:
    """Every trained surrogate's weights in one file (written atomically), and beside it `<name>.json` with the
    file's SHA-256 (checked on load) and each surrogate's training record."""
    from tenfold.components.data.sources import sha256_file

    path = Path(path)
    atomic_torch_save(path, {name: m.net.state_dict() for name, m in models.items()})
    atomic_write_json(path.with_suffix(".json"), {"sha256": sha256_file(path), "surrogates": meta})
    return path


def load_surrogates(path: str | Path, names: list[str] | None = None) -> dict[str, FaceModel]:
    """Surrogates saved by `save_surrogates`: checksum against the manifest, `weights_only=True`, strict keys."""
    from tenfold.components.data.sources import sha256_file

    path = Path(path)
    manifest = path.with_suffix(".json")
    if not path.exists() or not manifest.exists():
        raise FileNotFoundError(
            f"{path}: no trained surrogates (with {manifest.name}); run the stage "
            "`lowkey_surrogates` (`tenfold run lowkey_surrogates`) first"
        )
    expected = json.loads(manifest.read_text()).get("sha256", "")
    if sha256_file(path) != expected:
        raise WeightsError(
            f"{path}: SHA-256 differs from {manifest.name} ({expected[:12]}...): the file is corrupt "
            "or was replaced; rerun stage `lowkey_surrogates`"
        )
    try:
        states = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        raise WeightsError(f"{path}: not a readable weights file ({type(e).__name__}: {e})") from None
    out = {}
    for name in names if names is not None else list(states):
        if name not in states:
            raise WeightsError(f"{path}: no surrogate {name!r} (has {sorted(states)})")
        model = isolated(lambda n=name: build(n, surrogate_spec()))  # init overwritten: others' draws kept intact
        load_strict(model.net, states[name], f"surrogate {name} ({path})")
        out[name] = model.eval()
    return out


def recognizers(
    names: list[str], shared_root: str | Path, surrogates: str | Path | None = None, roles: dict[str, str] | None = None
) -> dict[str, FaceModel]:
    """The differentiable recognizers `names` (pretrained ones located and checked, surrogates from their file)."""
    out: dict[str, FaceModel] = {}
    trained = [n for n in names if n not in PRETRAINED]
    if trained:
        if surrogates is None:
            raise ValueError(f"recognizers {trained} are trained here: pass the surrogates file")
        out.update(load_surrogates(surrogates, trained))
    for n in names:
        if n in PRETRAINED:
            out[n] = load_pretrained(n, shared_root)
    for n, m in out.items():
        m.role = (roles or {}).get(n, m.role)
    return {n: out[n] for n in names}


def describe(model) -> dict:
    """The registry row of a recognizer: name, role, input size, template, normalisation, source."""
    tmpl = model.template if isinstance(model.template, str) else np.round(model.template, 1).tolist()
    return {
        "name": model.name,
        "role": model.role,
        "input": f"{model.size[0]}x{model.size[1]}",
        "template": tmpl,
        "normalisation": model.normalisation,
        "source": model.source or "trained here",
        "differentiable": isinstance(model, FaceModel),
    }


@torch.no_grad()
def embed(model: FaceModel, photos: np.ndarray, points: list, batch: int = 64, flip: bool = True) -> np.ndarray:
    """L2-normalised embeddings of uint8 photos (N, H, W, 3) through the detected landmarks `points` (a (5, 2)
    array or None per photo: None = the centred square, a pipeline's fallback), averaged with the mirror image."""
    model.eval()
    th = thetas(list(points), photos.shape[1:3], model.size, model.template)
    out = []
    for i in range(0, len(photos), batch):
        x = torch.from_numpy(np.ascontiguousarray(photos[i : i + batch])).permute(0, 3, 1, 2).float().div(255)
        crops = warp(x, th[i : i + batch], model.size)
        e = model(crops)
        if flip:
            e = torch.nn.functional.normalize(e + model(crops.flip(-1)), dim=1)
        out.append(e)
    return torch.cat(out).numpy()


def verification_auc(emb: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC of cosine similarity for same vs different identity over every pair of the embeddings."""
    from sklearn.metrics import roc_auc_score

    e = emb / np.linalg.norm(emb, axis=1, keepdims=True).clip(1e-12)
    iu = np.triu_indices(len(e), 1)
    same = (labels[:, None] == labels[None, :])[iu]
    if same.all() or not same.any():
        raise ValueError("verification AUC needs both same-identity and different-identity pairs")
    return float(roc_auc_score(same, (e @ e.T)[iu]))


def rank_k(
    gallery: np.ndarray, gallery_ids: np.ndarray, probes: np.ndarray, probe_ids: np.ndarray, ks: list[int]
) -> dict[int, np.ndarray]:
    """Closed-set identification by cosine similarity: per rank k, whether each probe's identity is among the k
    nearest gallery entries (a boolean per probe, so callers can bootstrap)."""
    g = gallery / np.linalg.norm(gallery, axis=1, keepdims=True).clip(1e-12)
    p = probes / np.linalg.norm(probes, axis=1, keepdims=True).clip(1e-12)
    order = np.argsort(-(p @ g.T), axis=1, kind="stable")
    ranked = gallery_ids[order]
    return {k: (ranked[:, :k] == probe_ids[:, None]).any(1) for k in ks}
