"""Stage `lowkey_surrogates` of study `lowkey` (arXiv:2101.07922): the surrogate face models, trained on CelebA
identities disjoint from the evaluated ones, saved as models/lowkey/surrogates.pt for stage `lowkey`."""

from __future__ import annotations

import numpy as np
import torch
from prefect import flow

from flows.common import prepare
from tasks.lowkey_surrogates import train_face_model
from tenfold.components.models.facemodels import load_pretrained
from tenfold.core.checkpoints import Checkpoint
from tenfold.core.runtime import atomic_write_json, fingerprint
from tenfold.studies.lowkey.data import FACES_FILE, load_celeba, read_faces, split
from tenfold.studies.lowkey.recognizers import CPU_FILE, save_surrogates
from tenfold.studies.lowkey.train import aligned_crops


@flow(name="lowkey_surrogates")
def lowkey_surrogates_flow(params_path: str = "params.yaml", root: str = ".") -> dict:
    """The surrogates, trained on the CelebA identities that are neither evaluated nor distractors."""
    ctx = prepare("lowkey", params_path, root)
    p = ctx.params
    celeba = load_celeba(ctx.shared_data, p.data.identities_max)
    lm, _ = read_faces(ctx.data_root / "lowkey" / FACES_FILE, celeba)
    sp = split(celeba.identities, lm.found, p.data, ctx.seed_for("split"))
    ms1m = load_pretrained("ms1m", ctx.shared_data)
    crops = torch.from_numpy(aligned_crops(celeba.load(sp.train), lm.take(sp.train), ms1m.size, ms1m.template))
    labels = torch.from_numpy(np.unique(celeba.identities[sp.train], return_inverse=True)[1].astype(np.int64))
    data_fp = fingerprint(crops.shape, int(crops.sum()), labels.tolist())
    futures = {}
    for s in p.surrogates:
        seed = ctx.seed_for("surrogate", s.name)
        ckpt = Checkpoint(
            ctx.path("checkpoints", f"{s.name}.pt"), fingerprint(s.model_dump(), p.train.model_dump(), data_fp, seed)
        )
        futures[s.name] = train_face_model.submit(
            s, crops, labels, p.train, seed, ms1m.net.state_dict() if s.init == "ms1m" else None, ckpt, ctx.progress
        )
    models, meta, cpu = {}, {}, {}
    for s in p.surrogates:
        models[s.name], history, seconds = futures[s.name].result()
        cpu[s.name] = round(seconds, 1)
        meta[s.name] = {
            "head": s.head,
            "init": s.init,
            "history": history,
            "train_photos": int(len(labels)),
            "train_identities": int(labels.max()) + 1,
        }
    # The weights and their record are stage `lowkey`'s inputs: byte-identical for the same training, so a rerun
    # that trains the same surrogates reruns nothing downstream. The CPU seconds differ on every run: they go to a
    # file of their own that `lowkey` reads for its table but does not depend on.
    save_surrogates(ctx.path("models", "surrogates.pt"), models, meta)
    atomic_write_json(ctx.path("models", CPU_FILE), cpu)
    return {k: {**v, "cpu_seconds": cpu[k]} for k, v in meta.items()}
