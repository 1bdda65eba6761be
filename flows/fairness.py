"""Study `fairness` (arXiv:2102.06764): fairness constraints on deep nets hold on training data, not on test data.

Trains MLPs (tabular data) and small CNNs (images) of several widths with demographic-parity, equalized-odds and
equal-opportunity constraints (fixed penalty, Lagrangian constrained optimisation, adversarial debiasing) on a
medical set (UCI heart disease, sex), the tabular fairness sets (German credit, COMPAS, Adult) and a digits image
task with a stroke-weight group, plus fairlearn's exponentiated-gradient reduction as the classical baseline;
records train/test accuracy and gaps along training and publishes (results/fairness.json, plots/fairness/, an
MLflow run with the registered model).
"""

from __future__ import annotations

import numpy as np
from prefect import flow
from prefect.logging import get_run_logger

from flows.common import prepare, publish, tracked
from tasks.fairness import fairlearn_reduction, load_fair_data, train_fair_net
from tenfold.core.checkpoints import Checkpoint
from tenfold.core.runtime import atomic_torch_save, fingerprint
from tenfold.studies.fairness import outcome
from tenfold.studies.fairness.models import make_model
from tenfold.studies.fairness.study import main_spec, plan_runs, results_frame


@flow(name="fairness")
def fairness_flow(params_path: str = "params.yaml", root: str = ".") -> dict:
    ctx = prepare("fairness", params_path, root)
    p, d, ev = ctx.params, ctx.params.data, ctx.params.eval
    celeba = {"target": d.celeba_target, "group": d.celeba_group, "size": d.celeba_size}
    split = lambda name: (ctx.seed_for("split", name), d.test_fraction, d.max_train, d.max_test)  # noqa: E731
    loads = {n: load_fair_data.submit(n, str(ctx.data_root), *split(n), d.digits_source, celeba) for n in d.datasets}
    datasets = {name: f.result() for name, f in loads.items()}
    sources = {f"data_source.{n}": ds.source for n, ds in datasets.items()}
    tags = {
        "data_source": "; ".join(f"{n}: {ds.source}" for n, ds in datasets.items()),
        **sources,
        "main_dataset": d.main,
        "claim_notion": ev.claim_notion,
    }
    with tracked(ctx, tags=tags) as run:
        baselines = submit_baselines(ctx, datasets)  # submitted first: the reductions run beside the nets
        specs, keep, futures = submit_nets(ctx, datasets)
        outputs = [f.result() for f in futures]
        main_state = next(o["state"] for spec, o in zip(specs, outputs) if spec == keep)
        measured = outcome.Measured(
            results_frame([(spec, o["history"]) for spec, o in zip(specs, outputs)]),
            datasets,
            {k: f.result() for k, f in baselines.items()},
            len(specs),
        )
        out = outcome.build(p, measured)
        outcome.write_figures(out, p, measured, ctx.path("plots"))
        nt = ev.claim_notion
        for e, row in outcome.gap_by_epoch(p, measured.df).iterrows():
            run.log_metrics({"train_gap": row[f"train_gap_{nt}"], "test_gap": row[f"test_gap_{nt}"]}, step=int(e))
        model = make_model(
            datasets[d.main].x_train.shape[1:], keep.width, p.model.depth, p.model.image_arch, p.model.cnn_channel_ratio
        )
        model.load_state_dict(main_state)
        atomic_torch_save(ctx.path("models", "constrained_net.pt"), main_state)
        about = f"{keep.method} {nt}-constrained {type(model).__name__} (width {keep.width}) on {d.main}"
        model_kw = dict(model=model, model_name="constrained_net", model_description=about)
        example = datasets[d.main].x_test[:2].astype(np.float32)
        return publish(ctx, run, out, input_example=example, log=get_run_logger(), **model_kw)


def submit_baselines(ctx, datasets) -> dict:
    """fairlearn's reduction per (dataset, notion): every notion on the main dataset, the claim's elsewhere."""
    p, d, tr, ev = ctx.params, ctx.params.data, ctx.params.train, ctx.params.eval
    baselines = {}
    for name in d.datasets if p.baseline.enabled else []:
        for nt in tr.notions if name == d.main else [ev.claim_notion]:
            seed = ctx.seed_for("fairlearn", name, nt)
            baselines[(name, nt)] = fairlearn_reduction.submit(
                datasets[name], nt, tr.epsilon, p.baseline.max_iter, p.baseline.eps, seed
            )
    return baselines


def submit_nets(ctx, datasets) -> tuple[list, object, list]:
    """One training task per planned run (each checkpointed); returns the specs, the main run's spec, futures."""
    p, tr, ev = ctx.params, ctx.params.train, ctx.params.eval
    specs, keep = plan_runs(p), main_spec(p)
    futures = []
    for spec in specs:
        data = datasets[spec.dataset]
        arch = [p.model.image_arch, p.model.cnn_channel_ratio] if data.is_image and p.model.image_arch == "cnn" else []
        seed = ctx.seed_for("net", spec.seed, spec.width)  # every method starts from the same init
        split_seed = ctx.seed_for("split", spec.dataset)
        fp = fingerprint(
            spec.as_dict(),
            p.model.depth,
            tr.model_dump(),
            data.summary(),
            ev.noise_permutations,
            seed,
            split_seed,
            *arch,
        )
        ckpt = Checkpoint(ctx.path("checkpoints", f"{spec.name}.pt"), fp)
        model_args = (p.model.image_arch, p.model.cnn_channel_ratio)
        futures.append(
            train_fair_net.submit(
                data, spec, p.model.depth, tr, ctx.device, seed, ev.noise_permutations, ckpt, spec == keep, *model_args
            )
        )
    return specs, keep, futures
