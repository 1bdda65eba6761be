"""Prefect tasks of the `depth` study: load the image data, train one recurrent or feed-forward classifier and
predict the test set."""

from __future__ import annotations

import time

import torch
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from tenfold.components.data.images import ImageData, load
from tenfold.components.models.recurrent import count_parameters
from tenfold.core.checkpoints import Checkpoint
from tenfold.core.seeds import seeded
from tenfold.studies.depth.models import DepthNet
from tenfold.studies.depth.params import DepthData
from tenfold.studies.depth.train import predict, train


@task(name="depth-load-images", cache_policy=NO_CACHE)
def load_images(cfg: DepthData, root: str, split_seed: int, subset_seed: int) -> ImageData:
    """The dataset of `cfg` (seeded train/test split where the source has none), class-stratified subset."""
    data = load(cfg.dataset, root, seed=split_seed).subset(cfg.n_train, cfg.n_test, subset_seed)
    get_run_logger().info(
        "%s: %d train / %d test images from %s", data.name, len(data.y_train), len(data.y_test), data.source
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
) -> dict:
    """Train one net (initial weights from `init_seed`, batch order from `shuffle_seed`, resuming `checkpoint` when
    it matches); return accuracy and test predictions."""
    log = get_run_logger()
    xtr, ytr, xte, yte = (torch.as_tensor(a).to(device) for a in (data.x_train, data.y_train, data.x_test, data.y_test))
    model = seeded(
        init_seed, lambda: DepthNet(family.name, depth, recurrent, family.width, data.shape, data.num_classes, init)
    ).to(device)
    lr = family.lr or (cfg.recurrent_lr if recurrent and cfg.recurrent_lr else cfg.lr)
    t = time.time()
    history = train(model, xtr, ytr, cfg, lr, shuffle_seed, checkpoint)
    pred = predict(model, xte)
    acc = float((pred == yte).float().mean())
    kind = "recurrent" if recurrent else "feed-forward"
    log.info(
        "%s %s depth %d (%d iterations, %d params): test acc %.4f in %.1fs",
        family.name,
        kind,
        depth,
        model.iters,
        count_parameters(model),
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
        "model": model.cpu(),
    }
