"""Prefect tasks of study `minimax`: load the images (CIFAR-10 or digits), train one adversarial trainer, evaluate
it under (non-)uniform attacks."""

from __future__ import annotations

import math
from functools import partial

from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from tasks._task import task
from tasks.progress import progress
from tenfold.components.data.images import ImageData
from tenfold.components.perturb.pgd import accuracy
from tenfold.components.perturb.train import fit
from tenfold.core.checkpoints import Checkpoint
from tenfold.core.seeds import seed_for
from tenfold.studies.minimax import data as minimax_data
from tenfold.studies.minimax.params import MinimaxData, MinimaxTrain
from tenfold.studies.minimax.weighted import checkpoint_epoch, make_model, nonuniform_eval, trainer_loss


@task(name="minimax-load-data", cache_policy=NO_CACHE)
def load_data(cfg: MinimaxData, data_root: str, seed: int) -> ImageData:
    """CIFAR-10 (arrays of stage `build_cifar10`) or the digits, class-stratified subsets (see
    `tenfold.studies.minimax.data.load`)."""
    data = minimax_data.load(cfg, data_root, seed)
    get_run_logger().info(
        "%s (%s): %d training, %d test images", data.name, data.source, len(data.x_train), len(data.x_test)
    )
    return data


@task(name="train-adversarial", cache_policy=NO_CACHE)
def train_trainer(
    kind: str, x, y, cfg: MinimaxTrain, num_classes: int, seed: int, checkpoint: Checkpoint, show_progress: bool = False
):
    """Train `cfg.arch` with one trainer (at, weighted_at, trades, weighted_trades); returns (model, history).
    The initial weights come from `seed`, each epoch's shuffle, augmentation and attack draws from a generator
    seeded with `seed_for(seed, "minimax", "epoch", e)`, so trainers given the same seed start equal and see the
    same order. With `cfg.normalize` the net sees inputs standardised by the training set's channel statistics.
    A bar of the training epochs when `show_progress`, a Prefect progress artifact inside a run."""
    log = get_run_logger()
    model = make_model(cfg, x, num_classes, seed).to(x.device)
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

    def on_epoch(r, step):
        log.info("%s epoch %d loss %.4f", kind, r["epoch"], r["loss"])
        step()

    bar = progress(f"minimax: train {kind} seed {seed}", cfg.epochs - checkpoint_epoch(checkpoint), show_progress)
    with bar as step:
        hist = _fit(model, x, y, cfg, seed, loss, checkpoint, lambda r: on_epoch(r, step))
    return model, hist


def _fit(model, x, y, cfg: MinimaxTrain, seed: int, loss, checkpoint: Checkpoint, on_epoch):
    return fit(
        model,
        x,
        y,
        cfg.epochs,
        cfg.lr,
        cfg.batch_size,
        seed,
        loss_fn=loss,
        weight_decay=cfg.weight_decay,
        schedule=cfg.schedule,
        milestones=tuple(cfg.milestones),
        gamma=cfg.gamma,
        augment=partial(minimax_data.augment_batch, pad=4, flip=True) if cfg.augment else None,
        checkpoint=checkpoint,
        epoch_seeds=[seed_for(seed, "minimax", "epoch", e) for e in range(cfg.epochs)],
        on_epoch=on_epoch,
    )


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
