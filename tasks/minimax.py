"""Prefect tasks of study `minimax`: load the digits, train one adversarial trainer, evaluate it under (non-)uniform
attacks."""

from __future__ import annotations

import math

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from tenfold.components.data.images import ImageData
from tenfold.components.data.images import load as load_images
from tenfold.components.perturb.models import build
from tenfold.components.perturb.pgd import accuracy
from tenfold.components.perturb.train import fit
from tenfold.core.checkpoints import Checkpoint
from tenfold.core.seeds import seed_for, seeded
from tenfold.studies.minimax.params import MinimaxData, MinimaxTrain
from tenfold.studies.minimax.weighted import checkpoint_epoch, nonuniform_eval, trainer_loss


@task(name="minimax-load-data", cache_policy=NO_CACHE)
def load_data(cfg: MinimaxData, data_root: str, seed: int) -> ImageData:
    """The dataset's seeded train/test split, then a class-stratified subset of `n_train` / `n_test` images."""
    data = load_images(cfg.dataset, data_root, seed).subset(cfg.n_train, cfg.n_test, seed)
    get_run_logger().info(
        "%s (%s): %d training, %d test images", data.name, data.source, len(data.x_train), len(data.x_test)
    )
    return data


@task(name="train-adversarial", cache_policy=NO_CACHE)
def train_trainer(kind: str, x, y, cfg: MinimaxTrain, num_classes: int, seed: int, checkpoint: Checkpoint):
    """Train `cfg.arch` with one trainer (at, weighted_at, trades, weighted_trades); returns (model, history).
    The initial weights come from `seed`, each epoch's shuffle and attack draws from a generator seeded with
    `seed_for(seed, "minimax", "epoch", e)`, so trainers given the same seed start equal and see the same order."""
    log = get_run_logger()
    model = seeded(seed, lambda: build(cfg.arch, x.shape[1], num_classes, x.shape[-1])).to(x.device)
    steps_per_epoch = math.ceil(len(x) / cfg.batch_size)
    loss = trainer_loss(
        kind,
        cfg.eps,
        cfg.steps,
        cfg.step_size,
        cfg.alpha,
        cfg.beta,
        warmup_steps=round(cfg.warmup_epochs * steps_per_epoch),
        start_step=checkpoint_epoch(checkpoint) * steps_per_epoch,
    )
    hist = fit(
        model,
        x,
        y,
        cfg.epochs,
        cfg.lr,
        cfg.batch_size,
        seed,
        loss_fn=loss,
        weight_decay=cfg.weight_decay,
        checkpoint=checkpoint,
        epoch_seeds=[seed_for(seed, "minimax", "epoch", e) for e in range(cfg.epochs)],
        on_epoch=lambda r: log.info("%s epoch %d loss %.4f", kind, r["epoch"], r["loss"]),
    )
    return model, hist


@task(name="evaluate-nonuniform", cache_policy=NO_CACHE)
def evaluate_trainer(kind: str, model, x, y, ev, seed: int) -> dict:
    """Clean accuracy, weighted robust accuracy for every alpha_pgd (alpha 0 = uniform robust accuracy) and the
    per-example correctness under the uniform attack (for the shifted-test-distribution evaluation)."""
    robust, correct = nonuniform_eval(
        model, x, y, ev.eps, ev.steps, ev.step_size, ev.restarts, ev.alphas, seed, return_correct=True
    )
    out = {"clean": accuracy(model, x, y), "robust": robust, "uniform_correct": correct[0.0]}
    get_run_logger().info("%s (attack seed %d): clean %.3f, robust %s", kind, seed, out["clean"], out["robust"])
    return out
