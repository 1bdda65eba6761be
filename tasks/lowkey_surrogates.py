"""The task of stage `lowkey_surrogates`: train one surrogate face model, in a module of its own so the surrogates
depend on their training code, not on the attack."""

from __future__ import annotations

import time

import torch
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from tasks._task import task
from tasks.progress import progress
from tenfold.components.models.facemodels import count_parameters
from tenfold.core.checkpoints import Checkpoint
from tenfold.studies.lowkey.params import LowKeyTrain, Surrogate
from tenfold.studies.lowkey.train import train_surrogate


@task(name="lowkey-train-surrogate", cache_policy=NO_CACHE)
def train_face_model(
    spec: Surrogate,
    crops: torch.Tensor,
    labels: torch.Tensor,
    cfg: LowKeyTrain,
    seed: int,
    init_state: dict | None,
    checkpoint: Checkpoint,
    show_progress: bool = False,
):
    """Train one surrogate (resuming `checkpoint`); (model, history, CPU seconds). A bar of the training epochs
    when `show_progress`, a Prefect progress artifact inside a run."""
    log = get_run_logger()
    t0 = time.process_time()

    def on_epoch(r, step):
        log.info("%s epoch %d: loss %.3f, train acc %.3f", spec.name, r["epoch"], r["loss"], r["train_acc"])
        step()

    epochs = cfg.epochs if spec.init == "ms1m" else cfg.scratch_epochs  # as train_surrogate picks them
    with progress(f"lowkey: train surrogate {spec.name}", epochs, show_progress) as step:
        model, history = train_surrogate(
            spec, crops, labels, cfg, seed, init_state, checkpoint, on_epoch=lambda r: on_epoch(r, step)
        )
    log.info("%s (%s head, init %s, %d parameters) trained", spec.name, spec.head, spec.init, count_parameters(model))
    return model, history, time.process_time() - t0
