"""Prefect task of the `depth` study: train one recurrent or feed-forward classifier and predict the test set."""
from __future__ import annotations

import time

import torch
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from tenfold.studies.depth.models import DepthNet
from tenfold.studies.depth.train import predict, train
from tenfold.components.models.recurrent import count_parameters
from tenfold.core.seeds import seeded


@task(name="depth-train-classifier", cache_policy=NO_CACHE)
def train_classifier(family, depth: int, recurrent: bool, data, cfg, init: str, device, seed: int,
                     checkpoint: str, fingerprint: str) -> dict:
    """Train one net (resuming `checkpoint` when it matches `fingerprint`); return accuracy and test predictions."""
    log = get_run_logger()
    xtr, ytr, xte, yte = (torch.as_tensor(a).to(device) for a in (data.x_train, data.y_train, data.x_test,
                                                                  data.y_test))
    model = seeded(seed, lambda: DepthNet(family.name, depth, recurrent, family.width, data.shape,
                                          data.num_classes, init)).to(device)
    lr = family.lr or (cfg.recurrent_lr if recurrent and cfg.recurrent_lr else cfg.lr)
    t = time.time()
    history = train(model, xtr, ytr, cfg, lr, seed, checkpoint, fingerprint)
    pred = predict(model, xte)
    acc = float((pred == yte).float().mean())
    kind = "recurrent" if recurrent else "feed-forward"
    log.info("%s %s depth %d (%d iterations, %d params): test acc %.4f in %.1fs", family.name, kind, depth,
             model.iters, count_parameters(model), acc, time.time() - t)
    return {"family": family.name, "depth": depth, "recurrent": recurrent, "iters": model.iters, "acc": acc,
            "params": count_parameters(model), "pred": pred.cpu(), "history": history, "seed": seed,
            "model": model.cpu()}
