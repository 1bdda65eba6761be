"""Prefect tasks of the `depth` study: load the image data, train one recurrent or feed-forward classifier and
predict the test set."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import torch
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from tasks.progress import progress
from tenfold.components.data import cifar10
from tenfold.components.data.images import ImageData, load
from tenfold.components.models.recurrent import count_parameters
from tenfold.core.checkpoints import Checkpoint
from tenfold.core.seeds import seeded
from tenfold.studies.depth.models import DepthNet
from tenfold.studies.depth.params import DepthData
from tenfold.studies.depth.train import learning_rate, predict, standardize, train


@task(name="depth-load-images", cache_policy=NO_CACHE)
def load_images(cfg: DepthData, root: str, split_seed: int, subset_seed: int) -> ImageData:
    """The dataset of `cfg`: CIFAR-10 from the arrays of DVC stage `build_cifar10` under `<root>/cifar10` (missing
    arrays are an error naming that stage), or the digits with a seeded train/test split; a class-stratified subset,
    standardised per channel with the training subset's statistics when `cfg.standardize`."""
    full = (
        cifar10.load(Path(root) / "cifar10") if cfg.dataset == "cifar10" else load(cfg.dataset, root, seed=split_seed)
    )
    data = full.subset(cfg.n_train, cfg.n_test, subset_seed)
    if cfg.standardize:
        x_train, x_test = standardize(data.x_train, data.x_test)
        data = replace(data, x_train=x_train, x_test=x_test)
    get_run_logger().info(
        "%s: %d train / %d test images from %s%s",
        data.name,
        len(data.y_train),
        len(data.y_test),
        data.source,
        " (standardised)" if cfg.standardize else "",
    )
    return data


@task(name="depth-train-classifier", cache_policy=NO_CACHE)
def train_classifier(
    family,
    depth: int,
    recurrent: bool,
    data: ImageData,
    cfg,
    init: str,
    device,
    init_seed: int,
    shuffle_seed: int,
    checkpoint: Checkpoint,
    show_progress: bool = False,
) -> dict:
    """Train one net (initial weights from `init_seed`, batch order from `shuffle_seed`, resuming `checkpoint` when
    it matches); return accuracy and test predictions."""
    log = get_run_logger()
    xtr, ytr, xte, yte = (torch.as_tensor(a).to(device) for a in (data.x_train, data.y_train, data.x_test, data.y_test))
    model = seeded(
        init_seed, lambda: DepthNet(family.name, depth, recurrent, family.width, data.shape, data.num_classes, init)
    ).to(device)
    lr = learning_rate(family, recurrent, cfg)
    t = time.time()
    kind = "recurrent" if recurrent else "feed-forward"
    with progress(f"depth: train {family.name} {kind} depth {depth}", cfg.epochs, show_progress) as step:
        history = train(model, xtr, ytr, cfg, lr, shuffle_seed, checkpoint, on_epoch=lambda rec: step())
    pred = predict(model, xte)
    acc = float((pred == yte).float().mean())
    log.info(
        "%s %s depth %d (%d iterations, %d params, lr %g): test acc %.4f in %.1fs",
        family.name,
        kind,
        depth,
        model.iters,
        count_parameters(model),
        lr,
        acc,
        time.time() - t,
    )
    return {
        "family": family.name,
        "depth": depth,
        "recurrent": recurrent,
        "iters": model.iters,
        "acc": acc,
        "params": count_parameters(model),
        "pred": pred.cpu(),
        "history": history,
        "seed": init_seed,
        "lr": lr,
        "model": model.cpu(),
    }
