"""Study `depth` (arXiv:2102.11011): recurrent nets vs feed-forward nets at matched effective depth on image
classification: accuracy vs effective depth per family, parameter counts, and agreement of predictions.

Writes results/depth.json, metrics/depth.json, plots/depth/, models/depth/, checkpoints/depth/ and an MLflow run
(registered model: the deepest recurrent net of the first family).
"""

from __future__ import annotations

from prefect import flow
from prefect.logging import get_run_logger

from flows.common import prepare, publish, tracked
from tasks.depth import load_images, train_classifier
from tenfold.core.checkpoints import Checkpoint
from tenfold.core.runtime import atomic_torch_save, fingerprint
from tenfold.studies.depth import outcome


@flow(name="depth")
def depth_flow(params_path: str = "params.yaml", root: str = ".") -> dict:
    ctx = prepare("depth", params_path, root)
    p = ctx.params
    data = load_images.submit(p.data, str(ctx.data_root), ctx.seed_for("split"), ctx.seed_for("subset")).result()
    with tracked(ctx, tags={"data_source": data.source}) as run:
        futures, ddp = {}, (ctx.progress, ctx.common.nproc, ctx.common.threads)  # nproc > 1: each net under torchrun
        for fam in p.families:
            for depth in fam.depths:
                for rec in (True, False):
                    for s in range(p.seeds):
                        # a recurrent net and its feed-forward twin share initial seed and batch order
                        seeds = ctx.seed_for("init", s), ctx.seed_for("shuffle", s)
                        name = f"{fam.name}_d{depth}_{'rec' if rec else 'ff'}_s{s}"
                        ckpt = Checkpoint(
                            ctx.path("checkpoints", f"{name}.pt"),
                            fingerprint(
                                fam.model_dump(),
                                depth,
                                rec,
                                p.train.model_dump(),
                                p.init,
                                p.data.model_dump(),
                                data.source,
                                *seeds,
                            ),
                        )
                        futures[(fam.name, depth, rec, s)] = train_classifier.submit(
                            fam, depth, rec, data, p.train, p.init, ctx.device, *seeds, ckpt, *ddp
                        )
        res = {k: f.result() for k, f in futures.items()}
        measured = outcome.Measured(res, data.name, data.source, len(data.y_train), len(data.y_test))
        for step, values in outcome.step_metrics(p, measured):
            run.log_metrics(values, step=step)
        out = outcome.build(p, measured)
        outcome.write_figures(out, p, measured, ctx.path("plots"))
        fam, depth = outcome.main_net(p)
        main = res[(fam, depth, True, 0)]["model"]
        atomic_torch_save(ctx.path("models", f"{fam}_recurrent_d{depth}.pt"), main.state_dict())
        return publish(
            ctx,
            run,
            out,
            model=main,
            model_name=f"{fam}_recurrent_d{depth}",
            input_example=data.x_test[:2],
            log=get_run_logger(),
            model_description=f"recurrent {fam} net, effective depth {depth}",
        )
