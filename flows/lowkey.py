"""Study `lowkey` (arXiv:2101.07922): LowKey filters against the full face-recognition pipeline.

Surrogate face models (ArcFace/CosFace heads, two backbones) are trained on AT&T identities disjoint from
the evaluation identities; LowKey filters the evaluation probes through MTCNN detection + alignment; the
filtered probes are identified against a clean gallery by the surrogates, a held-out architecture and dlib's
ResNet recognizer (third party, never trained or touched by the project). Writes metrics/lowkey.json,
plots/lowkey/, models/lowkey/ensemble.pt (used by the web tool) and an MLflow run with the registered model.
"""
from __future__ import annotations

import time

import numpy as np
import torch
from prefect import flow
from prefect.logging import get_run_logger
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from flows.common import data_root, prepare, publish, run_flow
from tasks.lowkey import aligned, detect, eval_dlib, eval_surrogate, protect, train_face_model
from tasks.track import study_run
from tenfold.registry import get as get_study
from tenfold.core.claims import claim
from tenfold.components.data.faces import load_att
from tenfold.studies.lowkey import plots as lk_plots
from tenfold.studies.lowkey.train import save_ensemble
from tenfold.core.plotting import write_csv
from tenfold.core.runtime import atomic_savez, fingerprint

TITLE = "LowKey: leveraging adversarial attacks to protect social media users from facial recognition"


@flow(name="lowkey")
def lowkey_flow(params_path: str = "params.yaml", root: str = ".") -> dict:
    t0 = time.time()
    ctx = prepare("lowkey", params_path, root)
    log = get_run_logger()
    p, crop = ctx.params, ctx.params.align.crop_size
    shared = ctx.root / ctx.common.shared_data
    faces = load_att([data_root(ctx), data_root(ctx) / "faces", shared / "faces", shared])
    rgb = faces.rgb()
    k = p.data.train_subjects
    n_eval = 40 - k if p.data.eval_subjects is None else min(p.data.eval_subjects, 40 - k)
    train_mask = faces.subjects < k
    eval_mask = (faces.subjects >= k) & (faces.subjects < k + n_eval)
    gal = eval_mask & (faces.numbers == p.data.gallery_number)
    others = [n for n in range(1, 11) if n != p.data.gallery_number][:p.data.probes_per_subject]
    prb = eval_mask & np.isin(faces.numbers, others)
    data_fp = fingerprint(rgb.shape, int(rgb.astype(np.int64).sum()))

    with study_run("lowkey", {"common": ctx.common, "lowkey": p}, stage="lowkey", uri=ctx.common.mlflow_uri,
                   lock=ctx.root / "dvc.lock") as run:
        run.set_tags({"data_source": faces.source, "device": str(ctx.device),
                      "detector": "MTCNN (facenet-pytorch weights)", "third_party": "dlib ResNet v1"})
        run.log_dataset("att_faces", data_fp, faces.source.split(":", 1)[-1], "training+evaluation")
        used = train_mask | gal | prb
        th = torch.zeros(len(rgb), 2, 3)
        th[used], found = detect(rgb[used], crop, p.align.min_face_size)
        aligned_src = torch.from_numpy(np.ascontiguousarray(rgb)).permute(0, 3, 1, 2).float().div(255)
        labels = torch.from_numpy(faces.subjects[train_mask])
        specs = [*p.ensemble, p.eval.heldout]
        futures = {}
        for i, s in enumerate(specs):
            fp = fingerprint(s.model_dump(), p.train.model_dump(), crop, k, data_fp, ctx.seed + i)
            futures[s.name] = train_face_model.submit(s, aligned_src[train_mask], th[train_mask], labels, crop,
                                                      p.train, ctx.seed + i, ctx.device,
                                                      str(ctx.path("checkpoints", f"{s.name}.pt")), fp)
        models, histories = {}, {}
        for name, f in futures.items():
            models[name], histories[name] = f.result()
            for rec in histories[name]:
                run.log_metrics({f"{name}_train_loss": rec["loss"]}, step=rec["epoch"])
        ensemble = [models[s.name] for s in p.ensemble]
        save_ensemble(ctx.path("models", "ensemble.pt"), {s.name: models[s.name] for s in p.ensemble},
                      list(p.ensemble), crop, p.train)

        # ---- the filter (alignment of the clean probe inside the loop)
        t_attack = time.time()
        filtered, feat_dist = protect(ensemble, rgb[prb], th[prb], crop, p.attack, ctx.seed)
        attack_seconds = time.time() - t_attack
        atomic_savez(ctx.path("models", "filtered_probes.npz"), images=filtered, subjects=faces.subjects[prb])

        # ---- quality of the filtered images (uint8, as saved)
        ssims = np.array([structural_similarity(a, b, channel_axis=-1, data_range=255)
                          for a, b in zip(rgb[prb], filtered)])
        psnrs = np.array([peak_signal_noise_ratio(a, b, data_range=255) for a, b in zip(rgb[prb], filtered)])

        # ---- identification: surrogates and held-out model re-detect and re-align the filtered probes
        th_f, found_f = detect(filtered, crop, p.align.min_face_size)
        gid, pid = faces.subjects[gal], faces.subjects[prb]
        probe_sets = {"clean": aligned(rgb[prb], th[prb], crop), "filtered": aligned(filtered, th_f, crop)}
        gal_crops = aligned(rgb[gal], th[gal], crop)
        sur = {name: eval_surrogate.submit(m, gal_crops, gid, probe_sets, pid, p.eval.ranks)
               for name, m in models.items()}
        dl = eval_dlib(rgb[gal], gid, {"clean": rgb[prb], "filtered": filtered}, pid, p.eval.ranks,
                       p.eval.dlib_upsample)
        sur = {name: f.result() for name, f in sur.items()}

        # ---- trade-off sweep (probe subset): dlib rank-1 and held-out rank-1 vs SSIM for other attack settings
        heldout = p.eval.heldout.name
        sweep = run_sweep(p, models[heldout], ensemble, rgb, faces, gal, prb, th, crop, ctx.seed,
                          filtered, ssims, ctx.path("plots")) if p.sweep.points else None

        # ---- claims
        r1 = min(p.eval.ranks)
        claims = [
            claim("dlib_rank1_filtered", "dlib's ResNet recognizer (third party) identifies at most 10% of "
                  "LowKey-filtered probes at rank 1 (clean gallery)",
                  "Rekognition and Azure below 1% rank-1 on FaceScrub", dl["filtered"]["ranks"][r1],
                  p.eval.target_dlib_rank1, "<="),
            claim("lowkey_ssim", "mean SSIM of filtered probes to the originals is at least 0.85",
                  "LowKey filters stay visually close (LPIPS-controlled)", float(ssims.mean()), p.eval.target_ssim,
                  ">="),
            claim("surrogate_rank1_filtered", f"the held-out architecture ({heldout}, not in the attack "
                  "ensemble) identifies at most 10% of filtered probes at rank 1",
                  "black-box FR models fooled", sur[heldout]["filtered"][r1], p.eval.target_heldout_rank1, "<="),
        ]
        passed = dl["clean"]["ranks"][r1] >= 0.9 and min(h[-1]["train_acc"] for h in histories.values()) >= 0.9

        # ---- tables, plots
        rows = []
        for name in [*(s.name for s in p.ensemble), heldout]:
            role = "held-out" if name == heldout else "ensemble"
            rows.append([name, role, *[round(sur[name][s][r], 4) for s in ("clean", "filtered") for r in p.eval.ranks]])
        rows.append(["dlib ResNet v1", "third party",
                     *[round(dl[s]["ranks"][r], 4) for s in ("clean", "filtered") for r in p.eval.ranks]])
        cols = ["model", "role", *[f"{s} rank-{r}" for s in ("clean", "filtered") for r in p.eval.ranks]]
        write_csv(ctx.path("plots", "identification.csv"), cols, rows)
        write_csv(ctx.path("plots", "quality.csv"), ["probe", "ssim", "psnr", "feature_distance"],
                  [[i, round(a, 4), round(b, 3), round(float(c), 5)] for i, (a, b, c) in
                   enumerate(zip(ssims, psnrs, feat_dist))])
        lk_plots.rank_bars(ctx.path("plots", "rank1.png"), [r[0] for r in rows],
                           [r[2] for r in rows], [r[2 + len(p.eval.ranks)] for r in rows],
                           "rank-1 identification, clean vs LowKey probes")
        figures = [{"path": "plots/lowkey/rank1.png", "caption": "Rank-1 accuracy, clean vs filtered probes"}]
        if sweep:
            figures.append({"path": "plots/lowkey/tradeoff.png",
                            "caption": f"dlib rank-1 vs SSIM over attack settings ({sweep['probes']} probes)"})
        if p.eval.examples:
            sel = np.linspace(0, len(filtered) - 1, min(p.eval.examples, len(filtered))).astype(int)
            lk_plots.examples(ctx.path("plots", "examples.png"), rgb[prb][sel], filtered[sel], ssims[sel])
            figures.append({"path": "plots/lowkey/examples.png", "caption": "Before / after LowKey"})

        notes = [f"{'Reached' if c.holds else 'Not reached'}: `{c.id}` measured "
                 f"{'n/a' if c.measured is None else f'{c.measured:.3f}'} (target {c.comparison} {c.target})."
                 for c in claims]
        notes += [
            f"Surrogates are small CPU models trained on {int(train_mask.sum())} AT&T images of {k} identities "
            "disjoint from the evaluation identities; the paper's ensemble is four IR-152/ResNet-152 models trained "
            "on MS-Celeb-1M. Transfer to dlib is therefore expected to be far weaker than in the paper.",
            "Perceptual penalty: 1 - SSIM instead of LPIPS (AlexNet LPIPS weights are not available offline); "
            f"c_sim={p.attack.c_sim} is on the SSIM scale, not LPIPS'.",
            f"Evaluation set: {n_eval} identities, gallery image {p.data.gallery_number}, {int(prb.sum())} probes "
            "(grey photos replicated to RGB; the filter is free to add colour, as on a real photo). Paper: FaceScrub "
            "probes/gallery with UMDFaces distractors and commercial APIs (not available offline).",
            f"Detection: MTCNN found a face in {int(found.sum())}/{len(found)} clean images used and {int(found_f.sum())}/"
            f"{len(found_f)} filtered probes; dlib's HOG detector found one in {dl['clean']['detected']:.3f} of clean "
            f"and {dl['filtered']['detected']:.3f} of filtered probes (else the whole image is the face box).",
        ]
        summary = {"ssim_mean": float(ssims.mean()), "ssim_min": float(ssims.min()), "psnr_mean": float(psnrs.mean()),
                   "attack_seconds": round(attack_seconds, 1),
                   "seconds_per_face": round(attack_seconds / max(1, len(filtered)), 3)}
        reg = run.log_model(models[heldout], f"{heldout}", input_example=gal_crops[:2].numpy(), passed=passed,
                            description=f"held-out face model {heldout} (evaluation of LowKey transfer)")
        metrics = {
            "study": "lowkey", "arxiv": get_study("lowkey").arxiv, "title": TITLE,
            "description": (f"LowKey filters {int(prb.sum())} AT&T probes of {n_eval} identities with an ensemble of "
                            f"{len(ensemble)} surrogates (x2 with Gaussian smoothing), {p.attack.n_iters} signed "
                            f"gradient steps of {p.attack.lr}, through MTCNN alignment; identification by the "
                            "surrogates, a held-out architecture and dlib's ResNet recognizer."),
            "claims": [c.as_dict() for c in claims],
            "identification": {"surrogates": {n: {s: {str(r): v for r, v in d.items()} for s, d in e.items()}
                                              for n, e in sur.items()},
                               "dlib": {s: {"ranks": {str(r): v for r, v in d["ranks"].items()},
                                            "detected": d["detected"]} for s, d in dl.items()}},
            "quality": summary,
            "training": {n: h[-1] for n, h in histories.items()},
            "tradeoff": sweep,
            "tables": {"identification": {"title": "Rank-k identification, clean vs LowKey-filtered probes",
                                          "columns": cols, "rows": rows},
                       "quality": {"title": "Image quality of the filtered probes",
                                   "columns": ["mean SSIM", "min SSIM", "mean PSNR (dB)", "seconds per face"],
                                   "rows": [[round(summary["ssim_mean"], 4), round(summary["ssim_min"], 4),
                                             round(summary["psnr_mean"], 2), summary["seconds_per_face"]]]}},
            "figures": figures, "notes": notes,
            "run": {"mlflow_run_id": run.run_id, "registered_model": f"{reg['name']} v{reg['version']}",
                    "alias_moved": passed, "device": str(ctx.device), "wall_seconds": round(time.time() - t0, 1)},
        }
        if sweep:
            metrics["tables"]["tradeoff"] = {"title": f"Trade-off over attack settings ({sweep['probes']} probes, "
                                             "first row = the default)", "columns": sweep["columns"],
                                             "rows": sweep["rows"]}
        return publish(ctx, run, metrics, claims, {"dlib_rank1_filtered": dl["filtered"]["ranks"][r1],
                                                   "dlib_rank1_clean": dl["clean"]["ranks"][r1],
                                                   "lowkey_ssim": float(ssims.mean())}, t0, log)


def run_sweep(p, heldout_model, ensemble, rgb, faces, gal, prb, th, crop, seed, filtered, ssims, out) -> dict:
    """Attack a probe subset at each `sweep.points` setting; dlib and held-out rank-1 vs SSIM, CSV and plot.

    The default setting is included as the first row, read off the main run's filtered probes.
    """
    log = get_run_logger()
    numbers = sorted(set(faces.numbers[prb].tolist()))[:p.sweep.probes_per_subject]
    sub = prb & np.isin(faces.numbers, numbers)
    in_prb = np.isin(np.flatnonzero(prb), np.flatnonzero(sub))
    gid, sid = faces.subjects[gal], faces.subjects[sub]
    gal_crops = aligned(rgb[gal], th[gal], crop)
    settings = [("default", p.attack, filtered[in_prb], ssims[in_prb])]
    for pt in p.sweep.points:
        cfg = p.attack_at(pt)
        label = (f"it{cfg.n_iters} lr{cfg.lr:g} c{cfg.c_sim:g} s{cfg.smooth_sigma:g}")
        imgs, _ = protect(ensemble, rgb[sub], th[sub], crop, cfg, seed)
        ss = np.array([structural_similarity(a, b, channel_axis=-1, data_range=255) for a, b in zip(rgb[sub], imgs)])
        settings.append((label, cfg, imgs, ss))
    rows = []
    for label, cfg, imgs, ss in settings:
        dl = eval_dlib(rgb[gal], gid, {"filtered": imgs}, sid, [1, 5], p.eval.dlib_upsample)["filtered"]
        th_f, _ = detect(imgs, crop, p.align.min_face_size)
        ho = eval_surrogate.fn(heldout_model, gal_crops, gid, {"f": aligned(imgs, th_f, crop)}, sid, [1])["f"][1]
        rows.append([label, cfg.n_iters, cfg.lr, cfg.c_sim, cfg.smooth_sigma, round(float(ss.mean()), 4),
                     round(dl["ranks"][1], 4), round(dl["ranks"][5], 4), round(ho, 4), round(dl["detected"], 4)])
        log.info("sweep %s: SSIM %.3f, dlib rank-1 %.3f, held-out rank-1 %.3f", label, ss.mean(), dl["ranks"][1], ho)
    cols = ["setting", "n_iters", "lr", "c_sim", "smooth_sigma", "ssim", "dlib_rank1", "dlib_rank5",
            "heldout_rank1", "dlib_detected"]
    write_csv(out / "tradeoff.csv", cols, rows)
    ss_, d1 = [r[5] for r in rows], [r[6] for r in rows]
    lk_plots.tradeoff(out / "tradeoff.png", ss_, d1, [r[8] for r in rows], [r[0] for r in rows],
                      p.eval.target_ssim, p.eval.target_dlib_rank1, default_index=0)
    best = lk_plots.best_points(ss_, d1, p.eval.target_ssim)
    pick = {k: (None if i is None else dict(zip(cols, rows[i]))) for k, i in best.items()}
    return {"probes": int(sub.sum()), "columns": cols, "rows": rows, **pick}


def main(params_path: str = "params.yaml"):
    return run_flow(lowkey_flow, "lowkey", params_path)


if __name__ == "__main__":
    main()
