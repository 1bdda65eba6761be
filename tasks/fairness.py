"""Prefect tasks of the `fairness` study: load a dataset, train one constrained net, run the fairlearn baseline."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from tenfold.core.checkpoints import Checkpoint
from tenfold.core.seeds import seeded
from tenfold.studies.fairness import data as fair_data
from tenfold.studies.fairness.models import count_parameters, make_model
from tenfold.studies.fairness.params import FairnessTrain
from tenfold.studies.fairness.study import RunSpec
from tenfold.studies.fairness.train import fairlearn_baseline, train_fair


@task(name="fairness-load-data", cache_policy=NO_CACHE)
def load_fair_data(
    name: str, data_root: str, seed: int, test_fraction: float, max_train, max_test, digits_source: str, celeba: dict
) -> fair_data.FairData:
    data = fair_data.load(name, data_root, seed, test_fraction, max_train, max_test, digits_source, celeba)
    get_run_logger().info("fairness data %s", data.summary())
    return data


@task(name="fairness-train-net", cache_policy=NO_CACHE)
def train_fair_net(
    data: fair_data.FairData,
    spec: RunSpec,
    depth: int,
    cfg: FairnessTrain,
    device,
    seed: int,
    noise_permutations: int,
    checkpoint: Checkpoint,
    keep_model: bool = False,
    image_arch: str = "mlp",
    cnn_channel_ratio: float = 1 / 16,
) -> dict:
    """Train one (dataset, method, notion, width, seed) net from `seed`. A finished run is saved in `checkpoint`
    (history, and the weights if `keep_model`), so a killed sweep resumes with the runs it had finished."""
    log = get_run_logger()
    saved = checkpoint.load()
    if saved is not None and (saved.get("state") is not None or not keep_model):
        log.info("fairness %s: resumed from %s", spec.name, checkpoint.path)
        return {"history": saved["history"], "state": saved.get("state")}
    model = seeded(seed, lambda: make_model(data.x_train.shape[1:], spec.width, depth, image_arch, cnn_channel_ratio))
    history = train_fair(
        model, data, spec.method, spec.notion if spec.notion != "none" else "dp", cfg, device, seed, noise_permutations
    )
    last = history[-1]
    log.info(
        "fairness %s (%s, %d params): train acc %.3f test acc %.3f | train/test gaps dp %.3f/%.3f eo %.3f/%.3f",
        spec.name,
        type(model).__name__,
        count_parameters(model),
        last["train_acc"],
        last["test_acc"],
        last["train_gap_dp"],
        last["test_gap_dp"],
        last["train_gap_eo"],
        last["test_gap_eo"],
    )
    out = {"history": history, "state": {k: v.cpu() for k, v in model.state_dict().items()} if keep_model else None}
    checkpoint.save(**out)
    return out


@task(name="fairness-fairlearn-baseline", cache_policy=NO_CACHE)
def fairlearn_reduction(
    data: fair_data.FairData, notion: str, epsilon: float, max_iter: int, eps: float, seed: int
) -> dict:
    out = fairlearn_baseline(data, notion, epsilon, max_iter, eps, seed)
    get_run_logger().info("fairlearn %s %s: %s", data.name, notion, {k: round(v, 3) for k, v in out.items()})
    return out
