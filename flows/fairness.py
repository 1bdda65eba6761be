"""Study `fairness` (arXiv:2102.06764): fairness constraints on deep nets hold on training data, not on test data.

`build_utkface_flow` (DVC stage `build_utkface`) decodes the offline UTKFace faces once into
<data_root>/utkface64/faces.npz. `fairness_flow` (stage `fairness`) trains CNNs and ResNet-style nets of growing
width on face tasks (age group with gender, gender with race as the sensitive attribute) with demographic-parity
and equalized-odds constraints (fixed penalty, Lagrangian, adversarial debiasing) and unconstrained baselines,
along training length, width and training-set size, plus the what-helps variants; MLPs on the medical and tabular
sets as secondary tables; fairlearn's exponentiated-gradient reduction on fixed features as the classical
baseline. Every test gap is reported beside its permutation noise floor; it publishes results/fairness.json,
plots/fairness/ and an MLflow run with the registered model.
"""

from __future__ import annotations

import numpy as np
from prefect import flow
from prefect.logging import get_run_logger

from flows.common import prepare, publish, tracked
from tasks.fairness import build_utkface, fairlearn_on_embeddings, fairlearn_reduction, load_fair_data, train_fair_net
from tasks.progress import results
from tenfold.components.data.sources import locate
from tenfold.core.checkpoints import Checkpoint
from tenfold.core.runtime import atomic_torch_save, fingerprint
from tenfold.studies.fairness import outcome
from tenfold.studies.fairness.models import make_model
from tenfold.studies.fairness.study import (
    baseline_plan,
    cpu_by_part,
    data_keys,
    is_face,
    main_spec,
    plan_runs,
    results_frame,
    run_setup,
)


@flow(name="build_utkface")
def build_utkface_flow(params_path: str = "params.yaml", root: str = ".") -> dict:
    ctx = prepare("fairness", params_path, root)
    src = locate("utkface64", ctx.shared_data)
    return build_utkface.submit(
        str(src), str(ctx.data_root / "utkface64"), ctx.params.faces.limit, ctx.seed_for("build_subset")
    ).result()


def _checkpoint(ctx, spec, setup, data, seed: int) -> Checkpoint:
    """The checkpoint of one run, fingerprinted by everything that determines its result."""
    ev = ctx.params.eval
    key = fingerprint(
        spec.as_dict(),
        setup.cfg.model_dump(),
        setup.depth,
        setup.channel_ratio,
        setup.augment,
        data.summary(),
        ev.noise_permutations,
        ev.floor_quantile,
        seed,
        ctx.seed_for("split", spec.dataset),
    )
    return Checkpoint(ctx.path("checkpoints", f"{spec.name}.pt"), key)


class _Notion:
    """One notion's result of a task that returns {notion: result}, read like a future."""

    def __init__(self, future, notion: str):
        self.future, self.notion = future, notion

    def result(self):
        return self.future.result()[self.notion]


def _baselines(ctx, default: dict) -> dict:
    """Submit fairlearn's reduction for every (dataset, notion) of the plan; on face tasks also on each pretrained
    recognizer's embeddings (`<task>+<recognizer>`, one task that embeds once). Returns {(dataset, notion):
    future}. No task waits for another's result, so none holds a worker idle."""
    p, ev = ctx.params, ctx.params.eval
    plan = baseline_plan(p)
    out = {}
    for name, nt in plan:
        eps = (p.face_train if is_face(name) else p.train).epsilon
        out[name, nt] = fairlearn_reduction.submit(
            default[name],
            nt,
            eps,
            p.baseline.max_iter,
            p.baseline.eps,
            ctx.seed_for("fairlearn", name, nt),
            p.baseline.pca_components,
            ev.noise_permutations,
            ev.floor_quantile,
        )
    for name in sorted({n for n, _ in plan if is_face(n)}):
        for r in p.baseline.embeddings:
            key, nts = f"{name}+{r}", [nt for n, nt in plan if n == name]
            fut = fairlearn_on_embeddings.submit(
                default[name],
                r,
                str(ctx.shared_data),
                [(nt, ctx.seed_for("fairlearn", key, nt)) for nt in nts],
                p.face_train.epsilon,
                p.baseline.max_iter,
                p.baseline.eps,
                ev.noise_permutations,
                ev.floor_quantile,
            )
            out.update({(key, nt): _Notion(fut, nt) for nt in nts})
    return out


@flow(name="fairness")
def fairness_flow(params_path: str = "params.yaml", root: str = ".") -> dict:
    ctx = prepare("fairness", params_path, root)
    p, ev = ctx.params, ctx.params.eval
    specs, keep = plan_runs(p), main_spec(p)
    loads = {
        k: load_fair_data.submit(p, k[0], k[1], str(ctx.data_root), ctx.seed_for("split", k[0]))
        for k in data_keys(specs)
    }
    datasets = {k: f.result() for k, f in loads.items()}  # every bad input fails here, before any training
    default = {k[0]: d for k, d in datasets.items() if k[1] in (None, p.faces.n_train)}
    tags = {
        "data_source": "; ".join(f"{n}: {ds.source}" for n, ds in default.items()),
        **{f"data_source.{n}": ds.source for n, ds in default.items()},
        "main_dataset": keep.dataset,
        "claim_notion": ev.claim_notion,
    }
    with tracked(ctx, tags=tags) as run:
        baselines = _baselines(ctx, default)  # submitted first: the reductions run beside the nets
        futures = []
        for spec in specs:
            data, setup = datasets[spec.data_key], run_setup(p, spec)
            seed = ctx.seed_for("net", spec.seed, spec.arch, spec.width)  # every method starts from the same init
            ckpt = _checkpoint(ctx, spec, setup, data, seed)
            futures.append(
                train_fair_net.submit(
                    data, spec, setup, ctx.device, seed, ev.noise_permutations, ev.floor_quantile, ckpt, spec == keep
                )
            )
        outputs = results(futures, f"fairness: train {len(futures)} nets", ctx.progress)
        main_state = next(o["state"] for spec, o in zip(specs, outputs) if spec == keep)
        fl = {k: f.result() for k, f in baselines.items()}
        cpu = cpu_by_part(
            p, specs, [o["cpu_seconds"] for o in outputs], {k: b.pop("cpu_seconds") for k, b in fl.items()}
        )
        measured = outcome.Measured(
            results_frame([(spec, o["history"]) for spec, o in zip(specs, outputs)]), default, fl, len(specs)
        )
        out = outcome.build(p, measured)
        outcome.write_figures(out, p, measured, ctx.path("plots"))
        outcome.write_cpu_seconds(cpu, ctx.path("plots"))
        run.log_metrics({f"cpu_seconds.{k}": v for k, v in cpu.items() if v is not None})
        get_run_logger().info("fairness CPU seconds by part (None: resumed): %s", cpu)
        for r in out.details["curves"]["epoch"]:
            run.log_metrics({"train_gap": r["c"]["train_gap"], "test_gap": r["c"]["test_gap"]}, step=r["epoch"])
        setup = run_setup(p, keep)
        model = make_model(
            default[keep.dataset].x_train.shape[1:], keep.width, setup.depth, setup.arch, setup.channel_ratio
        )
        model.load_state_dict(main_state)
        atomic_torch_save(ctx.path("models", "constrained_net.pt"), main_state)
        return publish(
            ctx,
            run,
            out,
            model=model,
            model_name="constrained_net",
            input_example=default[keep.dataset].x_test[:2].astype(np.float32),
            model_description=f"{keep.method} {ev.claim_notion}-constrained {type(model).__name__} (width "
            f"{keep.width}) on {keep.dataset}",
            log=get_run_logger(),
        )
