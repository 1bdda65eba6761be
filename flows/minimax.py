"""Study `minimax` (arXiv:2010.12989): learnable weighted minimax risk vs plain PGD adversarial training.

Both trainers (and the TRADES pair when listed) train the same net on the same data and seed; each is evaluated
on clean data, under the uniform PGD attack and under the paper's non-uniform attacks (PGD on the weighted loss,
weighted robust accuracy) for several alpha_pgd, and on a label-shifted test distribution; the weight
distribution over training is plotted.
"""

from __future__ import annotations

import torch
from prefect import flow
from prefect.logging import get_run_logger

from flows.common import prepare, publish, tracked
from tasks.minimax import evaluate_trainer, load_data, train_trainer
from tenfold.core.checkpoints import Checkpoint
from tenfold.core.runtime import atomic_torch_save, fingerprint
from tenfold.studies.minimax import outcome
from tenfold.studies.minimax.weighted import label_shift


@flow(name="minimax")
def minimax_flow(params_path: str = "params.yaml", root: str = ".") -> dict:
    ctx = prepare("minimax", params_path, root)
    p, dev, trainers = ctx.params, ctx.device, list(ctx.params.train.trainers)
    data = load_data.submit(p.data, str(ctx.data_root), ctx.seed_for("data")).result()
    x, y, xt, yt = (torch.from_numpy(a).to(dev) for a in (data.x_train, data.y_train, data.x_test, data.y_test))
    seeds = [ctx.seed_for("train", i) for i in range(p.train.seeds)]  # shared by the trainers: same init and order
    attack_seed = {s: ctx.seed_for("attack", i) for i, s in enumerate(seeds)}
    with tracked(ctx, tags={"data_source": data.source}) as run:
        # fan-out: every (trainer, seed) pair is one task on the flow's task runner (threads, or Dask)
        trained = {
            (k, s): train_trainer.submit(
                k,
                x,
                y,
                p.train,
                data.num_classes,
                s,
                Checkpoint(
                    ctx.path("checkpoints", f"{k}_seed{s}.pt"),
                    fingerprint(k, p.train.model_dump(exclude={"seeds"}), p.data.model_dump(), s),
                ),
                ctx.progress,
            )
            for s in seeds
            for k in trainers
        }
        models = {ks: f.result() for ks, f in trained.items()}
        evals = {
            ks: evaluate_trainer.submit(ks[0], m, xt, yt, p.eval, attack_seed[ks[1]]) for ks, (m, _) in models.items()
        }
        per = {ks: f.result() for ks, f in evals.items()}
        for (k, s), (_, hist) in models.items():
            for r in hist:
                run.log_metrics({f"{k}.seed{s}.train_loss": r["loss"]}, step=r["epoch"])
        # label shift toward the classes the uniform attack hurts most, chosen from every trainer and seed alike
        shift_cls, shifted = label_shift(
            {ks: r["uniform_correct"] for ks, r in per.items()},
            yt,
            p.eval.shift_classes,
            p.eval.shift_mass,
            data.num_classes,
        )
        per = {ks: {"clean": r["clean"], "robust": r["robust"], "shifted": shifted[ks]} for ks, r in per.items()}
        measured = outcome.Measured(
            per,
            seeds,
            {k: models[(k, seeds[0])][1] for k in trainers},
            shift_cls,
            data.name,
            data.source,
            len(x),
            len(xt),
        )
        out = outcome.build(p, measured)
        outcome.write_figures(out, p, measured, ctx.path("plots"))
        for k in trainers:
            atomic_torch_save(ctx.path("models", f"{k}.pt"), models[(k, seeds[0])][0].state_dict())
        for k, r in out.details["results"].items():
            run.log_metrics(
                {
                    f"{k}.clean": r["clean"],
                    f"{k}.shifted": r["shifted"],
                    **{f"{k}.robust_alpha_{float(a):g}": v for a, v in r["robust"].items()},
                }
            )
        return publish(
            ctx,
            run,
            out,
            model=models[("weighted_at", seeds[0])][0],
            model_name="weighted_at",
            input_example=xt[:2].cpu().numpy(),
            model_description="weighted minimax adversarially trained classifier",
            log=get_run_logger(),
        )
