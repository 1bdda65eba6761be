"""Study `lowkey` (arXiv:2101.07922): LowKey filters against the full face-recognition pipeline.

Surrogate face models (ArcFace/CosFace heads, two backbones) are trained on AT&T identities disjoint from
the evaluation identities; LowKey filters the evaluation probes through MTCNN detection + alignment; the
filtered probes are identified against a clean gallery by the surrogates, a held-out architecture and dlib's
ResNet recognizer (third party, never trained or touched by the project); a sweep over attack settings traces
the rank-1 vs SSIM trade-off. Writes results/ and metrics/lowkey.json, plots/lowkey/,
models/lowkey/ensemble.pt (used by the web tool) and an MLflow run with the registered held-out model.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from prefect import flow
from prefect.logging import get_run_logger

from flows.common import prepare, publish, tracked
from tasks.lowkey import detect, eval_dlib, eval_surrogate, image_quality, load_faces, protect, train_face_model
from tenfold.core.checkpoints import Checkpoint
from tenfold.core.runtime import atomic_savez, fingerprint
from tenfold.studies.lowkey import outcome
from tenfold.studies.lowkey.data import split, sweep_subset
from tenfold.studies.lowkey.pipeline import aligned, to_tensor
from tenfold.studies.lowkey.train import save_ensemble


@flow(name="lowkey")
def lowkey_flow(params_path: str = "params.yaml", root: str = ".") -> dict:
    ctx = prepare("lowkey", params_path, root)
    p, crop, log = ctx.params, ctx.params.align.crop_size, get_run_logger()
    shared = ctx.root / ctx.common.shared_data
    faces = load_faces.submit([str(r) for r in (ctx.data_root, ctx.data_root / "faces", shared / "faces", shared)])
    faces = faces.result()
    rgb, sp = faces.rgb(), split(faces, p.data)
    gal, prb = sp.gallery, sp.probes
    data_fp = fingerprint(rgb.shape, int(rgb.astype(np.int64).sum()))
    with tracked(
        ctx,
        tags={
            "data_source": faces.source,
            "detector": "MTCNN (facenet-pytorch weights)",
            "third_party": "dlib ResNet v1",
        },
    ) as run:
        run.log_dataset("att_faces", data_fp, faces.source.split(":", 1)[-1], "training+evaluation")
        th = torch.zeros(len(rgb), 2, 3)
        th[sp.used], found = detect.submit(rgb[sp.used], crop, p.align.min_face_size).result()
        models, histories = train_surrogates(
            ctx, to_tensor(rgb)[sp.train], th[sp.train], torch.from_numpy(faces.subjects[sp.train]), data_fp, run
        )
        members = {s.name: models[s.name] for s in p.ensemble}
        ensemble = list(members.values())
        save_ensemble(ctx.path("models", "ensemble.pt"), members, list(p.ensemble), crop, p.train)
        t_attack = time.time()  # the filter (alignment of the clean probe inside the loop)
        filtered, feat_dist = protect.submit(
            ensemble, rgb[prb], th[prb], crop, p.attack, ctx.seed_for("filter")
        ).result()
        attack_seconds = time.time() - t_attack
        atomic_savez(ctx.path("models", "filtered_probes.npz"), images=filtered, subjects=faces.subjects[prb])
        quality = image_quality.submit(rgb[prb], filtered)
        # identification: the face models re-detect and re-align the filtered probes; dlib uses its own pipeline
        th_f, found_f = detect.submit(filtered, crop, p.align.min_face_size).result()
        gid, pid = faces.subjects[gal], faces.subjects[prb]
        probe_sets = {"clean": aligned(rgb[prb], th[prb], crop), "filtered": aligned(filtered, th_f, crop)}
        gal_crops = aligned(rgb[gal], th[gal], crop)
        sur = {
            name: eval_surrogate.submit(m, gal_crops, gid, probe_sets, pid, p.eval.ranks) for name, m in models.items()
        }
        dl = eval_dlib.submit(
            rgb[gal], gid, {"clean": rgb[prb], "filtered": filtered}, pid, p.eval.ranks, p.eval.dlib_upsample
        )
        ssims, psnrs = quality.result()
        sweep_rows, sweep_probes = sweep(
            ctx, models[p.eval.heldout.name], ensemble, rgb, faces, sp, th, filtered, ssims
        )
        sel = outcome.example_indices(len(filtered), p.eval.examples) if p.eval.examples else None
        measured = outcome.Measured(
            int(sp.train.sum()),
            sp.train_subjects,
            sp.eval_subjects,
            int(prb.sum()),
            found,
            found_f,
            {name: f.result() for name, f in sur.items()},
            dl.result(),
            ssims,
            psnrs,
            feat_dist,
            attack_seconds,
            histories,
            sweep_rows,
            sweep_probes,
            None if sel is None else (rgb[prb][sel], filtered[sel], ssims[sel]),
        )
        out = outcome.build(p, measured)
        outcome.write_figures(out, p, measured, ctx.path("plots"))
        heldout = p.eval.heldout.name
        return publish(
            ctx,
            run,
            out,
            model=models[heldout],
            model_name=heldout,
            input_example=gal_crops[:2].numpy(),
            log=log,
            model_description=f"held-out face model {heldout} (evaluation of LowKey transfer)",
        )


def train_surrogates(ctx, images, th, labels, data_fp: str, run) -> tuple[dict, dict]:
    """The ensemble surrogates and the held-out model, trained concurrently (each checkpointed per epoch)."""
    p, crop = ctx.params, ctx.params.align.crop_size
    futures = {}
    for s in [*p.ensemble, p.eval.heldout]:
        seed = ctx.seed_for("surrogate", s.name)
        ckpt = Checkpoint(
            ctx.path("checkpoints", f"{s.name}.pt"),
            fingerprint(s.model_dump(), p.train.model_dump(), crop, p.data.train_subjects, data_fp, seed),
        )
        futures[s.name] = train_face_model.submit(s, images, th, labels, crop, p.train, seed, ctx.device, ckpt)
    models, histories = {}, {}
    for name, f in futures.items():
        models[name], histories[name] = f.result()
        for rec in histories[name]:
            run.log_metrics({f"{name}_train_loss": rec["loss"]}, step=rec["epoch"])
    return models, histories


def sweep(ctx, heldout_model, ensemble, rgb, faces, sp, th, filtered, ssims) -> tuple[list[list], int]:
    """The trade-off sweep on a probe subset: each `sweep.points` setting filters the subset; dlib and the
    held-out model identify the result. The default setting is the first row, read off the main run's probes.
    No sweep points: (None, 0)."""
    p, crop, log = ctx.params, ctx.params.align.crop_size, get_run_logger()
    if not p.sweep.points:
        return None, 0
    sub, in_prb = sweep_subset(faces, sp.probes, p.sweep.probes_per_subject)
    gid, sid = faces.subjects[sp.gallery], faces.subjects[sub]
    gal_crops = aligned(rgb[sp.gallery], th[sp.gallery], crop)
    cfgs = [p.attack_at(pt) for pt in p.sweep.points]
    attacked = [protect.submit(ensemble, rgb[sub], th[sub], crop, cfg, ctx.seed_for("filter")) for cfg in cfgs]
    settings = [("default", p.attack, filtered[in_prb], ssims[in_prb])]
    for cfg, f in zip(cfgs, attacked):
        imgs = f.result()[0]
        settings.append((outcome.setting_label(cfg), cfg, imgs, image_quality.submit(rgb[sub], imgs).result()[0]))
    dls = [
        eval_dlib.submit(rgb[sp.gallery], gid, {"filtered": imgs}, sid, [1, 5], p.eval.dlib_upsample)
        for _, _, imgs, _ in settings
    ]
    thetas = [detect.submit(imgs, crop, p.align.min_face_size) for _, _, imgs, _ in settings]
    hos = [
        eval_surrogate.submit(heldout_model, gal_crops, gid, {"f": aligned(imgs, t.result()[0], crop)}, sid, [1])
        for (_, _, imgs, _), t in zip(settings, thetas)
    ]
    rows = []
    for (label, cfg, _, ss), dl, ho in zip(settings, dls, hos):
        dl, ho = dl.result()["filtered"], ho.result()["f"][1]
        rows.append(outcome.sweep_row(label, cfg, ss, dl, ho))
        log.info("sweep %s: SSIM %.3f, dlib rank-1 %.3f, held-out rank-1 %.3f", label, ss.mean(), dl["ranks"][1], ho)
    return rows, int(sub.sum())
