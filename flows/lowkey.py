"""Study `lowkey` (arXiv:2101.07922): LowKey filters against the full face-recognition pipeline.

Three stages: `lowkey_faces` (flows/lowkey_faces.py) detects the 5 landmarks of every CelebA and AT&T photo once
(MTCNN; cached as data/lowkey/faces.npz); `lowkey_surrogates` (flows/lowkey_surrogates.py) trains the surrogates on
CelebA identities disjoint from the evaluated ones (fine-tuned from the MS1M MobileFaceNet and from scratch;
models/lowkey/surrogates.pt); each has its own module so that changing the attack reruns neither. `lowkey` (this
module) filters the
probes with the attack ensemble (the MS1M MobileFaceNet + the fine-tuned surrogates), through detection and
differentiable alignment, and identifies them against a gallery with distractors by every recognizer: the held-out
CASIA MobileFaceNet, every surrogate, and dlib (third party, black box, re-detecting every filtered photo); the
trade-off sweep and the AT&T table follow. Writes results/ and metrics/lowkey.json and plots/lowkey/.
"""

from __future__ import annotations

import numpy as np
from prefect import flow
from prefect.logging import get_run_logger

from flows.common import prepare, publish, tracked
from tasks.lowkey import dlib_describe, embed_sets, gather, image_quality, protect_batches
from tasks.lowkey_faces import detect
from tenfold.studies.lowkey import evaluate as ev
from tenfold.studies.lowkey import outcome
from tenfold.studies.lowkey.data import FACES_FILE, att_split, load_att_photos, load_celeba, read_faces, split
from tenfold.studies.lowkey.recognizers import CPU_FILE, describe, recognizers


@flow(name="lowkey")
def lowkey_flow(params_path: str = "params.yaml", root: str = ".") -> dict:
    ctx = prepare("lowkey", params_path, root)
    p, log = ctx.params, get_run_logger()
    celeba = load_celeba(ctx.shared_data, p.data.identities_max)
    lm, att_lm = read_faces(ctx.data_root / "lowkey" / FACES_FILE, celeba)
    sp = split(celeba.identities, lm.found, p.data, ctx.seed_for("split"))
    roles = {**{n: "attack" for n in p.models.attack}, p.models.heldout: "held-out"}
    names = [*p.models.attack, p.models.heldout, *[s.name for s in p.surrogates if s.name not in roles]]
    models = recognizers(names, ctx.shared_data, ctx.path("models", "surrogates.pt"), roles)
    attackers = [models[n] for n in p.models.attack]
    with tracked(
        ctx,
        tags={
            "data_source": celeba.source,
            "detector": "MTCNN (facenet-pytorch weights)",
            "third_party": "dlib ResNet v1",
            "attack": "+".join(p.models.attack),
        },
    ) as run:
        gal, prb, pid = celeba.load(sp.gallery), celeba.load(sp.probes), celeba.identities[sp.probes]
        steps = sorted({*p.sweep.steps, p.eval.first_iters, p.eval.subtle_iters})
        main = protect_batches(
            attackers, prb, lm.take(sp.probes), p.attack, ctx.seed_for("filter"), steps, ctx.progress
        )
        sub, runs = _sweep_runs(ctx, models, prb, lm.take(sp.probes), sp)
        att = _att_attack(ctx, attackers, att_lm) if p.att.enabled else None
        auc_photos = celeba.load(sp.auc)
        clean = _judge_submit(  # not awaited here: the filtered photos' judging queues behind it, no core idles
            ctx,
            models,
            {
                "gallery": (gal, lm.take(sp.gallery)),
                "probes": (prb, lm.take(sp.probes)),
                "auc": (auc_photos, lm.take(sp.auc)),
            },
        )
        gid, main, boxes = celeba.identities[sp.gallery], gather(main), lm.boxes[sp.probes]
        filt, swept = _judge_runs(ctx, models, prb, boxes, main, runs, sub)
        clean = _collect(clean)
        m = ev.Assemble(p, gid, pid, celeba.identities[sp.auc], clean, filt, models, describe)
        sweep_rows = m.sweep_rows("default", p.attack, filt, None) + [
            row
            for (cfg, names, _), judged in zip(runs, swept)
            for row in m.sweep_rows(
                outcome.setting_label(cfg, names if names != p.models.attack else None), cfg, judged, sub, names
            )
        ]
        measured = m.measured(
            sp, main, sweep_rows, _att_eval(ctx, models, att) if att else None, _training_meta(ctx), prb
        )
        out = outcome.build(p, measured)
        outcome.write_figures(out, p, measured, ctx.path("plots"))
        first = next((n for n in p.models.attack if n in models and models[n].source == ""), None)
        log.info("lowkey: attack CPU %.0f s for %d probes", main["cpu_seconds"], len(prb))
        return publish(
            ctx,
            run,
            out,
            model=models[first] if first else None,
            model_name=first,
            input_example=np.zeros((1, 3, 112, 112), np.float32),
            log=log,
            model_description=f"LowKey surrogate {first} (MobileFaceNet fine-tuned on CelebA identities)",
        )


def _sweep_runs(ctx, models: dict, prb, points: list, sp) -> tuple[np.ndarray, list]:
    """Start the trade-off's other runs on the sweep subset of the probes, each with its settings and attack
    ensemble: (positions, [(settings, ensemble names, futures)])."""
    p = ctx.params
    sub = ev.sweep_positions(len(sp.eval_ids), p.data.probes_per_identity, p.sweep.probes_per_identity)
    sub = sub[: p.sweep.max_probes]
    pts, runs = [points[i] for i in sub], []
    for pt in p.sweep.points:
        cfg, names = p.attack_at(pt), p.attackers_at(pt)
        attackers = [models[n] for n in names]
        seed = ctx.seed_for("filter")
        runs.append((cfg, names, protect_batches(attackers, prb[sub], pts, cfg, seed, p.sweep.steps, ctx.progress)))
    return sub, runs


def _judge_submit(ctx, models: dict, sets: dict, only: list[str] | None = None) -> dict:
    """Start the embeddings of every named set (photos, landmarks) by every recognizer (or `only`), and dlib's;
    `_collect` awaits them."""
    futs = {n: embed_sets.submit(m, sets) for n, m in models.items() if only is None or n in only}
    return {
        "emb": futs,
        "dlib": dlib_describe.submit({k: v[0] for k, v in sets.items()}, ctx.params.eval.dlib_upsample),
    }


def _collect(pending: dict) -> dict:
    return {"emb": {n: f.result() for n, f in pending["emb"].items()}, "dlib": pending["dlib"].result()}


def _judge_filtered(ctx, models, jobs: dict) -> dict:
    """Re-detect the filtered photos (MTCNN for the recognizers; dlib re-detects by itself), identify, measure.
    `jobs`: key -> (clean photos, filtered photos, face boxes, recognizers or None for all, MTCNN min face or
    None); every detection is submitted first and every identification before any is awaited, so the judging
    of all steps and runs runs side by side (the results do not depend on the order)."""
    mf = ctx.params.eval.redetect_min_face_size
    pre = {k: (detect.submit(ph, m or mf), image_quality.submit(c, ph, b)) for k, (c, ph, b, _, m) in jobs.items()}
    pending = {}
    for k, (_, ph, _, only, _) in jobs.items():
        pts, _, found = pre[k][0].result()
        pending[k] = (_judge_submit(ctx, models, {"probes": (ph, pts)}, only), found)
    return {
        k: {**_collect(j), "mtcnn_found": found, "quality": pre[k][1].result(), "photos": jobs[k][1]}
        for k, (j, found) in pending.items()
    }


def _judge_runs(ctx, models, prb, boxes, main: dict, runs: list, sub) -> tuple[dict, list[dict]]:
    """The default run judged at each step (every recognizer at the operating points, the held-out one elsewhere)
    and each sweep run at each of its steps (the held-out one): ({step: judged}, [{step: judged} per run])."""
    p, heldout = ctx.params, [ctx.params.models.heldout]
    ops = (p.eval.first_iters, p.eval.subtle_iters)
    jobs = {("default", s): (prb, ph, boxes, None if s in ops else heldout, None) for s, ph in main["photos"].items()}
    done = [gather(fut) for _, _, fut in runs]
    for i, run in enumerate(done):
        jobs.update({(i, s): (prb[sub], ph, boxes[sub], heldout, None) for s, ph in run["photos"].items()})
    judged = _judge_filtered(ctx, models, jobs)
    filt = {s: judged["default", s] for s in main["photos"]}
    return filt, [{s: judged[i, s] for s in run["photos"]} for i, run in enumerate(done)]


def _att_attack(ctx, attackers, att_lm) -> dict:
    """Start the AT&T filter (the second table): gallery = one photo per subject, probes filtered."""
    p = ctx.params
    rgb, subjects, numbers, _ = load_att_photos(ctx.shared_data, p.att.subjects)
    att_lm = att_lm.head(len(rgb))  # subject-major: the first subjects' photos come first
    g, q = att_split(subjects, numbers, att_lm.found, p.att)
    cfg = p.attack.model_copy(update={"n_iters": p.eval.first_iters})  # only the two operating points are read
    seed, shots = ctx.seed_for("att_filter"), [p.eval.subtle_iters]
    fut = protect_batches(attackers, rgb[q], att_lm.take(q), cfg, seed, shots, ctx.progress)
    return {"rgb": rgb, "subjects": subjects, "gallery": g, "probes": q, "lm": att_lm, "futures": fut}


def _att_eval(ctx, models, att) -> dict:
    p, rgb, g, q, lm = ctx.params, att["rgb"], att["gallery"], att["probes"], att["lm"]
    run = gather(att["futures"])
    clean = _judge_submit(ctx, models, {"gallery": (rgb[g], lm.take(g)), "probes": (rgb[q], lm.take(q))})
    steps = (p.eval.first_iters, p.eval.subtle_iters)
    filt = _judge_filtered(
        ctx, models, {s: (rgb[q], run["photos"][s], lm.boxes[q], None, p.align.min_face_size) for s in steps}
    )
    clean = _collect(clean)
    return {"clean": clean, "filtered": filt, "gallery_ids": att["subjects"][g], "probe_ids": att["subjects"][q]}


def _training_meta(ctx) -> dict:
    import json

    path, cpu = ctx.path("models", "surrogates.json"), ctx.path("models", CPU_FILE)
    meta = json.loads(path.read_text())["surrogates"] if path.exists() else {}
    seconds = json.loads(cpu.read_text()) if cpu.exists() else {}  # timings only: not a DVC dependency of `lowkey`
    return {k: {**v, "cpu_seconds": seconds.get(k)} for k, v in meta.items()}
