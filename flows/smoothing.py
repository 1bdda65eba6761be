"""Study `smoothing` (arXiv:2102.09701): center smoothing certifies vector-valued outputs.

Three base functions are smoothed and certified over a grid of sigma and eps_in: (a) a conv autoencoder trained
with Gaussian noise (dimensionality reduction), (b) a compressed-sensing reconstructor (seeded Gaussian measurement
matrix, noise on the measurements), (c) a face detector's box on the AT&T faces (distance 1 - IoU). The flow writes
results/ and metrics/smoothing.json, plots/smoothing/, models/smoothing/ and an MLflow run with the registered
autoencoder.
"""

from __future__ import annotations

import numpy as np
import torch
from prefect import flow
from prefect.logging import get_run_logger

from flows.common import StudyContext, prepare, publish, tracked
from tasks.smoothing import certify, load_images, log_measurements, train_base
from tenfold.components.data.faces import load_att
from tenfold.core.runtime import atomic_torch_save, md5_file
from tenfold.studies.smoothing import outcome
from tenfold.studies.smoothing.models import face_detector


@flow(name="smoothing")
def smoothing_flow(params_path: str = "params.yaml", root: str = ".") -> dict:
    ctx = prepare("smoothing", params_path, root)
    p, on = ctx.params, outcome.enabled(ctx.params)
    data = faces = None
    sources = {}
    if set(on) & set(outcome.IMAGE_TASKS):
        data = load_images.submit(p.dataset, str(ctx.data_root), ctx.seed_for("split")).result()
        sources["images"] = data.source
    if "faces" in on:
        faces = load_att([ctx.data_root, ctx.shared_data])
        sources["faces"] = faces.source
    tags = {
        "data_source": "; ".join(f"{k}: {v}" for k, v in sources.items()),
        **{f"data_source.{k}": v for k, v in sources.items()},
    }
    with tracked(ctx, tags=tags) as run:
        if faces is not None:
            first = faces.source.split(":", 1)[1]
            run.log_dataset("att_faces", md5_file(f"{first}/s1/1.pgm"), first, "evaluation")
        # base models: one per (task, sigma), trained with that sigma's noise, fanned out
        trained = {
            (kind, s): train_base.submit(
                kind,
                data.x_train,
                data.x_test[:500],
                on[kind],
                s,
                ctx.device,
                ctx.seed_for("base", kind, s),
                ctx.progress,
            )
            for kind in outcome.IMAGE_TASKS
            if kind in on
            for s in on[kind].sigmas
        }
        jobs, ablation = _certifications(ctx, on, data, faces, trained)
        results = {key: f.result() for key, f in jobs.items()}
        models = {key: f.result()[0] for key, f in trained.items()}
        training = {key: f.result()[1:] for key, f in trained.items()}  # (history, test MSE)
        log_measurements(run, results, training)
        measured = outcome.Measured(results, training, sources, ablation.result() if ablation is not None else None)
        out = outcome.build(p, measured)
        outcome.write_figures(out, p, measured, ctx.path("plots"))
        main = None
        if "autoencoder" in on:  # the registered model: the autoencoder at the claim's sigma
            main = models[("autoencoder", p.autoencoder.claim_sigma)]
            atomic_torch_save(ctx.path("models", "autoencoder.pt"), main.state_dict())
        return publish(
            ctx,
            run,
            out,
            model=main,
            model_name="center_smoothing_autoencoder",
            input_example=None if data is None else data.x_test[:2],
            model_description=f"conv autoencoder trained with sigma {p.autoencoder.claim_sigma} noise, "
            "the base model of the center-smoothing certificate",
            log=get_run_logger(),
        )


def _certifications(ctx: StudyContext, on: dict, data, faces, trained: dict) -> tuple[dict, object]:
    """Submit one certification per (task, sigma, distance) and the batch-norm ablation (the autoencoder at the
    claim's sigma in train mode, on the same first inputs and seeds); returns ({key: future}, future or None)."""
    p, dev, seed = ctx.params, ctx.device, ctx.seed_for("certify")  # common noise for every job (and the ablation)
    jobs, inputs = {}, {}
    for kind in (k for k in outcome.IMAGE_TASKS if k in on):
        cfg = on[kind]
        x = torch.from_numpy(data.subset(n_test=cfg.n_images, seed=ctx.seed_for("inputs")).x_test).to(dev)
        inputs[kind] = x
        for s in cfg.sigmas:
            model = trained[(kind, s)].result()[0].to(dev)
            inp = model.measure(x) if kind == "reconstructor" else x
            for dname in outcome.distances(kind, cfg):
                jobs[(kind, s, dname)] = certify.submit(
                    kind, model, inp, s, dname, cfg.eps_in, p.smooth_for(kind), seed
                )
    if "faces" in on:
        fc = on["faces"]
        det = face_detector(fc.detector, dev, min_size=fc.min_size, downscale=fc.downscale)
        idx = np.linspace(0, len(faces.images) - 1, fc.n_images).round().astype(int)
        fx = torch.from_numpy(faces.images[idx].astype(np.float32)).to(dev)
        for s in fc.sigmas:
            jobs[("faces", s, "iou")] = certify.submit(
                "faces", det, fx, s, "iou", fc.eps_in, p.smooth_for("faces"), seed, scale=255.0
            )
    ablation = None
    if p.bn_ablation_images and "autoencoder" in on:
        cfg = on["autoencoder"]
        model = trained[("autoencoder", cfg.claim_sigma)].result()[0]
        k = min(p.bn_ablation_images, cfg.n_images)
        ablation = certify.submit(
            "autoencoder",
            model,
            inputs["autoencoder"][:k],
            cfg.claim_sigma,
            cfg.distances[0],
            cfg.eps_in,
            p.smooth,
            seed,
            eval_mode=False,
        )
    return jobs, ablation
