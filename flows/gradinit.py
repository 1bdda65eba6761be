"""Study `gradinit` (arXiv:2102.08098): GradInit vs Kaiming on no-BN VGG and ResNet, and the Post-LN Transformer
trained with Adam and no warmup, default init vs GradInit, over a grid of learning rates.

Writes results/gradinit.json, metrics/gradinit.json, plots/gradinit/ (accuracy curves, learned scale per layer,
Transformer grid), models/gradinit/ and an MLflow run whose registered model is the GradInit-initialised VGG.
"""

from __future__ import annotations

from prefect import flow
from prefect.logging import get_run_logger

from flows.common import prepare, publish, tracked
from tasks.gradinit import image_run, load_images, transformer_init, transformer_run
from tenfold.core.runtime import atomic_torch_save
from tenfold.studies.gradinit import outcome


@flow(name="gradinit")
def gradinit_flow(params_path: str = "params.yaml", root: str = ".") -> dict:
    ctx = prepare("gradinit", params_path, root)
    p = ctx.params
    im, tr = p.images, p.transformer
    data = load_images.submit(im.data, str(ctx.data_root), ctx.seed_for("split"), ctx.seed_for("subset")).result()
    with tracked(ctx, tags={"data_source": data.source}) as run:
        # Kaiming and GradInit runs of one seed index start from the same weights and see the same batches
        images = {
            (arch, init, s): image_run.submit(arch, init, data, im, ctx.device, ctx.seed_for("image", s), ctx.progress)
            for arch in (im.models if im.enabled else [])
            for init in outcome.INITS
            for s in range(im.seeds)
        }
        lrs = tr.train.lrs if tr.enabled else []
        seed = ctx.seed_for("transformer")  # one initial model, batch stream and held-out set for the whole grid
        tinit = transformer_init.submit(tr, ctx.device, seed) if tr.enabled else None
        seq = {("default", lr): transformer_run.submit("default", lr, tr, ctx.device, seed) for lr in lrs}
        tgi = tinit.result() if tinit is not None else None
        # GradInit once; every learning rate starts from the same rescaled state
        seq.update(
            {("gradinit", lr): transformer_run.submit("gradinit", lr, tr, ctx.device, seed, tgi["state"]) for lr in lrs}
        )
        runs = {k: f.result() for k, f in images.items()}
        measured = outcome.Measured(
            runs,
            {k: f.result() for k, f in seq.items()},
            tgi,
            data.name,
            data.source,
            len(data.y_train),
            len(data.y_test),
        )
        for values, step in outcome.step_metrics(p, measured):
            run.log_metrics(values, step=step)
        out = outcome.build(p, measured)
        outcome.write_figures(out, p, measured, ctx.path("plots"))
        main, model = outcome.main_run(runs), {}
        if main is not None:
            atomic_torch_save(ctx.path("models", f"{main['arch']}_gradinit.pt"), main["model"].state_dict())
            model = {
                "model": main["model"],
                "model_name": f"{main['arch']}_gradinit",
                "input_example": data.x_test[:2],
                "model_description": f"{main['arch']} without BN, GradInit-initialised and trained on {data.name}",
            }
        return publish(ctx, run, out, log=get_run_logger(), **model)
