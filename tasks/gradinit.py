"""Prefect tasks of the `gradinit` study: one image run (Kaiming or GradInit) and one Post-LN Transformer run."""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from tenfold.gradinit.algorithm import batch_stream, gradinit, sample_stream
from tenfold.gradinit.models import VGG, PostLNTransformer, ResNet
from tenfold.gradinit.seqtask import make_batch, token_loss
from tenfold.gradinit.train import train_images, train_seq
from tenfold.runtime import seeded


def build_image_model(arch: str, mcfg, shape, num_classes: int):
    if arch == "vgg":
        return VGG(mcfg.vgg_depth, mcfg.vgg_width, shape[0], num_classes, shape[1])
    return ResNet(mcfg.resnet_blocks, mcfg.resnet_width, shape[0], num_classes)


@task(name="gradinit-image-run", cache_policy=NO_CACHE)
def image_run(arch: str, init: str, data, study, device, seed: int) -> dict:
    """Build `arch` with Kaiming init, optionally apply GradInit, train; return history, scales, timings, model."""
    log = get_run_logger()
    xtr, ytr, xte, yte = (torch.as_tensor(a).to(device) for a in (data.x_train, data.y_train, data.x_test,
                                                                  data.y_test))
    model = seeded(seed, lambda: build_image_model(arch, study.model, data.shape, data.num_classes)).to(device)
    out = {"arch": arch, "init": init, "seed": seed, "scales": {}, "gradinit_seconds": 0.0, "constraint_share": None}
    if init == "gradinit":
        cfg = study.vgg_init if arch == "vgg" else study.resnet_init
        t = time.time()
        res = gradinit(model, batch_stream(xtr, ytr, cfg.batch_size, seed + 1), F.cross_entropy, cfg)
        out.update(scales=res.scales, gradinit_seconds=time.time() - t, constraint_share=res.constraint_share)
        log.info("%s GradInit: %d iterations in %.1fs, constraint steps %.0f%%", arch, cfg.iters,
                 out["gradinit_seconds"], 100 * res.constraint_share)
    t = time.time()
    out["history"] = train_images(model, xtr, ytr, xte, yte, study.train, seed,
                                  on_epoch=lambda r: log.info("%s/%s epoch %d: test acc %.3f", arch, init,
                                                              r["epoch"], r["test_acc"]))
    out["train_seconds"] = time.time() - t
    out["model"] = model.cpu()
    return out


@task(name="gradinit-transformer-run", cache_policy=NO_CACHE)
def transformer_run(init: str, lr: float, study, device, seed: int) -> dict:
    """Post-LN Transformer on the generated task with Adam at `lr` and no warmup, default init or GradInit."""
    log = get_run_logger()
    t, m = study.task, study.model
    model = seeded(seed, lambda: PostLNTransformer(t.vocab, t.length, m.d_model, m.heads, m.layers, m.ffn,
                                                   m.dropout)).to(device)
    scales, constraint = {}, None
    if init == "gradinit":
        cfg = study.init
        sampler = lambda g: tuple(a.to(device) for a in make_batch(t.task, cfg.batch_size, t.length, t.vocab, g))  # noqa: E731
        res = gradinit(model, sample_stream(sampler, seed + 1), token_loss, cfg)
        scales, constraint = res.scales, res.constraint_share
    out = train_seq(model, t, study.train, lr, device, seed)
    log.info("Post-LN %s lr %g: test token acc %.3f (%s)", init, lr, out["final_test_acc"],
             "trains" if out["trains"] else "fails")
    return {**out, "init": init, "scales": scales, "constraint_share": constraint}
