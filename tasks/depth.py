"""Prefect tasks of the `depth` study: load the image data, train one recurrent or feed-forward classifier and
predict the test set."""

from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from tasks._task import task
from tasks.ddp import run_torchrun
from tasks.progress import progress
from tenfold.components.data import cifar10
from tenfold.components.data.images import ImageData, load
from tenfold.components.models.recurrent import count_parameters
from tenfold.core.artifacts import torch_load
from tenfold.core.checkpoints import Checkpoint
from tenfold.core.runtime import atomic_savez
from tenfold.studies.depth import distributed as ddp_entry
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


def _train_ddp(
    model, data: ImageData, net: dict, cfg, lr: float, shuffle_seed: int, checkpoint, device, nproc, threads
):
    """Train `model` under torchrun with `nproc` ranks (`tenfold.studies.depth.distributed`); load the weights rank 0
    wrote; return the history."""
    with tempfile.TemporaryDirectory(prefix="depth-ddp-") as tmp:
        atomic_savez(Path(tmp) / "data.npz", compress=False, x=data.x_train, y=data.y_train)
        spec = {
            "data": str(Path(tmp) / "data.npz"),
            "net": net,
            "cfg": cfg.model_dump(),
            "lr": lr,
            "shuffle_seed": shuffle_seed,
            "checkpoint": None if checkpoint.path is None else str(checkpoint.path),
            "fingerprint": checkpoint.fingerprint,
            "threads": threads,
            "device": str(device),
        }
        state = torch_load(run_torchrun("tenfold.studies.depth.distributed", spec, nproc, tmp))
    model.load_state_dict(state["model"])
    return state["history"]


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
    nproc: int = 1,
    threads: int = 1,
) -> dict:
    """Train one net (initial weights from `init_seed`, batch order from `shuffle_seed`, resuming `checkpoint` when
    it matches); return accuracy and test predictions. With `nproc > 1` data-parallel under torchrun (rank 0
    checkpoints; this task logs)."""
    log = get_run_logger()
    xtr, ytr, xte, yte = (torch.as_tensor(a).to(device) for a in (data.x_train, data.y_train, data.x_test, data.y_test))
    net = {
        "family": family.name,
        "depth": depth,
        "recurrent": recurrent,
        "width": family.width,
        "shape": list(data.shape),
        "classes": data.num_classes,
        "init": init,
        "init_seed": init_seed,
    }
    model = ddp_entry.build(net).to(device)
    lr = learning_rate(family, recurrent, cfg)
    t = time.time()
    kind = "recurrent" if recurrent else "feed-forward"
    if nproc > 1:
        history = _train_ddp(model, data, net, cfg, lr, shuffle_seed, checkpoint, device, nproc, threads)
        for rec in history:
            log.info(
                "%s %s depth %d epoch %d loss %.4f (%d processes)",
                family.name,
                kind,
                depth,
                rec["epoch"],
                rec["loss"],
                nproc,
            )
    else:
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
