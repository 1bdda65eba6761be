"""Prefect tasks of the `fairness` study: decode the faces, load a dataset, train one constrained net, run the
fairlearn baseline (on PCA of the pixels or on a pretrained recognizer's embeddings)."""

from __future__ import annotations

import time

from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from tasks._task import task
from tenfold.core.checkpoints import Checkpoint
from tenfold.core.seeds import seeded
from tenfold.studies.fairness import data as fair_data
from tenfold.studies.fairness import faces
from tenfold.studies.fairness.models import count_parameters, make_model
from tenfold.studies.fairness.params import FairnessParams
from tenfold.studies.fairness.study import RunSetup, RunSpec, load_dataset
from tenfold.studies.fairness.train import fairlearn_baseline, train_fair


@task(name="fairness-build-utkface", cache_policy=NO_CACHE)
def build_utkface(src: str, out_dir: str, limit: int | None, seed: int) -> dict:
    manifest = faces.build(src, out_dir, limit, seed)
    get_run_logger().info("UTKFace: %d faces decoded from %s into %s", manifest["n"], src, out_dir)
    return manifest


@task(name="fairness-load-data", cache_policy=NO_CACHE)
def load_fair_data(
    p: FairnessParams, dataset: str, n_train: int | None, data_root: str, seed: int
) -> fair_data.FairData:
    t0 = time.thread_time()
    data = load_dataset(p, dataset, n_train, data_root, seed)
    get_run_logger().info("fairness data %s (%.1f s CPU)", data.summary(), time.thread_time() - t0)
    return data


@task(name="fairness-fairlearn-on-embeddings", cache_policy=NO_CACHE)
def fairlearn_on_embeddings(
    data: fair_data.FairData,
    recognizer: str,
    shared_data: str,
    notions: list[tuple[str, int]],
    epsilon: float,
    max_iter: int,
    eps: float,
    noise_permutations: int = 0,
    floor_quantile: float = 0.95,
) -> dict[str, dict]:
    """fairlearn's reduction on a pretrained recognizer's embeddings of a face task (checksum-verified weights),
    embedded once for every (notion, seed): {notion: result}; each result carries its share of the CPU seconds."""
    from tenfold.components.models.facemodels import load_pretrained
    from tenfold.studies.fairness.embed import embed

    t0 = time.thread_time()
    emb = embed(data, load_pretrained(recognizer, shared_data, role="features"))
    cost = time.thread_time() - t0
    get_run_logger().info("fairness %s: %d-d embeddings (%.1f s CPU)", emb.name, emb.x_train.shape[1], cost)
    out = {}
    for nt, seed in notions:
        t1 = time.thread_time()
        res = fairlearn_baseline(emb, nt, epsilon, max_iter, eps, seed, None, noise_permutations, floor_quantile)
        get_run_logger().info("fairlearn %s %s: %s", emb.name, nt, {k: round(v, 3) for k, v in res.items()})
        out[nt] = {**res, "cpu_seconds": time.thread_time() - t1 + cost / len(notions)}
    return out


@task(name="fairness-train-net", cache_policy=NO_CACHE)
def train_fair_net(
    data: fair_data.FairData,
    spec: RunSpec,
    setup: RunSetup,
    device,
    seed: int,
    noise_permutations: int,
    floor_quantile: float,
    checkpoint: Checkpoint,
    keep_model: bool = False,
) -> dict:
    """Train one (dataset, net, method, notion, seed, size, variant) run from `seed`. A finished run is saved in
    `checkpoint` (history, and the weights if `keep_model`), so a killed sweep resumes with the runs it had
    finished. `cpu_seconds`: this thread's CPU time for the training (the nets run single-threaded in the task's
    thread), None for a resumed run."""
    log = get_run_logger()
    saved = checkpoint.load()
    if saved is not None and (saved.get("state") is not None or not keep_model):
        log.info("fairness %s: resumed from %s", spec.name, checkpoint.path)
        return {"history": saved["history"], "state": saved.get("state"), "cpu_seconds": None}
    t0 = time.thread_time()
    model = seeded(
        seed, lambda: make_model(data.x_train.shape[1:], spec.width, setup.depth, setup.arch, setup.channel_ratio)
    )
    history = train_fair(
        model,
        data,
        spec.method,
        spec.notion if spec.notion != "none" else "dp",
        setup.cfg,
        device,
        seed,
        noise_permutations,
        augment=setup.augment,
        floor_quantile=floor_quantile,
    )
    last, cpu = history[-1], time.thread_time() - t0
    log.info(
        "fairness %s (%s, %d params, %.1f s CPU): train acc %.3f test acc %.3f | train/test gaps dp %.3f/%.3f "
        "eo %.3f/%.3f",
        spec.name,
        type(model).__name__,
        count_parameters(model),
        cpu,
        last["train_acc"],
        last["test_acc"],
        last["train_gap_dp"],
        last["test_gap_dp"],
        last["train_gap_eo"],
        last["test_gap_eo"],
    )
    out = {"history": history, "state": {k: v.cpu() for k, v in model.state_dict().items()} if keep_model else None}
    checkpoint.save(**out)
    return {**out, "cpu_seconds": cpu}


@task(name="fairness-fairlearn-baseline", cache_policy=NO_CACHE)
def fairlearn_reduction(
    data: fair_data.FairData,
    notion: str,
    epsilon: float,
    max_iter: int,
    eps: float,
    seed: int,
    pca_components: int | None = None,
    noise_permutations: int = 0,
    floor_quantile: float = 0.95,
) -> dict:
    t0 = time.thread_time()
    out = fairlearn_baseline(
        data, notion, epsilon, max_iter, eps, seed, pca_components, noise_permutations, floor_quantile
    )
    get_run_logger().info("fairlearn %s %s: %s", data.name, notion, {k: round(v, 3) for k, v in out.items()})
    return {**out, "cpu_seconds": time.thread_time() - t0}
