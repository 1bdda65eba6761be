"""Prefect tasks of the `gradinit` study: load the (standardised) images, one image run (Kaiming or GradInit),
GradInit on the Post-LN Transformer and one Post-LN Transformer run."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from tasks._task import task
from tasks.progress import progress
from tenfold.components.data import cifar10
from tenfold.components.data.images import ImageData, load
from tenfold.core.runtime import channels_last
from tenfold.core.seeds import seed_for, seeded
from tenfold.studies.gradinit.algorithm import batch_stream, gradinit, sample_stream, scale_summary
from tenfold.studies.gradinit.models import VGG, PostLNTransformer, ResNet
from tenfold.studies.gradinit.seqtask import make_batch, token_loss
from tenfold.studies.gradinit.train import standardize, train_images, train_seq


@task(name="gradinit-load-images", cache_policy=NO_CACHE)
def load_images(cfg, root: str, split_seed: int, subset_seed: int) -> ImageData:
    """The dataset of `cfg` (`images.data`): CIFAR-10 from the arrays of DVC stage `build_cifar10` under
    `<root>/cifar10` (missing arrays are an error naming that stage) or the digits with a seeded train/test split;
    a class-stratified subset, standardised per channel with the training set's statistics (as the paper's
    Normalize transform)."""
    full = (
        cifar10.load(Path(root) / "cifar10") if cfg.dataset == "cifar10" else load(cfg.dataset, root, seed=split_seed)
    )
    data = full.subset(cfg.n_train, cfg.n_test, subset_seed)
    x_train, x_test = standardize(data.x_train, data.x_test)
    get_run_logger().info(
        "%s: %d train / %d test images from %s (standardised)",
        data.name,
        len(data.y_train),
        len(data.y_test),
        data.source,
    )
    return replace(data, x_train=x_train, x_test=x_test)


def build_image_model(arch: str, mcfg, shape, num_classes: int):
    if arch == "vgg":
        return channels_last(VGG(mcfg.vgg_depth, mcfg.vgg_width, shape[0], num_classes, shape[1]))
    return channels_last(ResNet(mcfg.resnet_blocks, mcfg.resnet_width, shape[0], num_classes))


@task(name="gradinit-image-run", cache_policy=NO_CACHE)
def image_run(arch: str, init: str, data, study, device, seed: int, show_progress: bool = False) -> dict:
    """Build `arch` with Kaiming init, optionally apply GradInit, train; return history, scales, timings, model.

    The initial weights, GradInit's batches and the training batch order each get their own seed from `seed`. A bar
    of the training epochs when `show_progress`, a Prefect progress artifact inside a run."""
    log = get_run_logger()
    xtr, ytr, xte, yte = (torch.as_tensor(a).to(device) for a in (data.x_train, data.y_train, data.x_test, data.y_test))
    model = seeded(
        seed_for(seed, "gradinit", "weights"),
        lambda: build_image_model(arch, study.model, data.shape, data.num_classes),
    ).to(device)
    out = {"arch": arch, "init": init, "seed": seed, "scales": {}, "gradinit_seconds": 0.0, "constraint_share": None}
    if init == "gradinit":
        cfg = study.vgg_init if arch == "vgg" else study.resnet_init
        t = time.time()
        batches = batch_stream(xtr, ytr, cfg.batch_size, seed_for(seed, "gradinit", "gradinit_batches"))
        res = gradinit(model, batches, F.cross_entropy, cfg)
        out.update(scales=res.scales, gradinit_seconds=time.time() - t, constraint_share=res.constraint_share)
        log.info(
            "%s GradInit: %d iterations in %.1fs, constraint steps %.0f%%",
            arch,
            cfg.iters,
            out["gradinit_seconds"],
            100 * res.constraint_share,
        )
    t = time.time()

    def on_epoch(r, step):
        log.info("%s/%s epoch %d: test acc %.3f", arch, init, r["epoch"], r["test_acc"])
        step()

    with progress(f"gradinit: train {arch}/{init} seed {seed}", study.train.epochs, show_progress) as step:
        out["history"] = train_images(
            model,
            xtr,
            ytr,
            xte,
            yte,
            study.train,
            seed_for(seed, "gradinit", "shuffle"),
            on_epoch=lambda r: on_epoch(r, step),
            bias_lr_factor=study.train.resnet_bias_lr_factor if arch == "resnet" else 1.0,
        )
    out["train_seconds"] = time.time() - t
    out["model"] = model.cpu()
    return out


def build_transformer(study, seed: int):
    """The Post-LN Transformer with its initial weights drawn from `seed` (the same for every run of one seed)."""
    t, m = study.task, study.model
    return seeded(
        seed_for(seed, "gradinit", "weights"),
        lambda: PostLNTransformer(t.vocab, t.length, m.d_model, m.heads, m.layers, m.ffn, m.dropout),
    )


@task(name="gradinit-transformer-init", cache_policy=NO_CACHE)
def transformer_init(study, device, seed: int) -> dict:
    """GradInit (Adam variant) on the Post-LN Transformer, once per seed: the rescaled state dict and the scales."""
    log = get_run_logger()
    t, cfg = study.task, study.init
    model = build_transformer(study, seed).to(device)

    def sampler(g):
        return tuple(a.to(device) for a in make_batch(t.task, cfg.batch_size, t.length, t.vocab, g))

    start = time.time()
    res = gradinit(model, sample_stream(sampler, seed_for(seed, "gradinit", "gradinit_batches")), token_loss, cfg)
    summary = scale_summary(res.scales)
    moved = sum(abs(v - 1.0) > 1e-6 for v in res.scales.values())
    log.info(
        "Post-LN GradInit: %d iterations in %.1fs, %d/%d scales moved, loss %.3f -> %.3f; %s",
        cfg.iters,
        time.time() - start,
        moved,
        len(res.scales),
        res.history[0]["loss"],
        res.history[-1]["loss"],
        {k: f"{v['min']:.2f}..{v['max']:.2f}" for k, v in summary.items()},
    )
    return {
        "state": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "scales": res.scales,
        "scale_summary": summary,
        "scales_moved": moved,
        "constraint_share": res.constraint_share,
        "gradinit_seconds": time.time() - start,
        "loss_first": res.history[0]["loss"],
        "loss_last": res.history[-1]["loss"],
    }


@task(name="gradinit-transformer-run", cache_policy=NO_CACHE)
def transformer_run(init: str, lr: float, study, device, seed: int, state: dict | None = None) -> dict:
    """Post-LN Transformer on the generated task with Adam at `lr` and no warmup, from the default init or from the
    GradInit state dict `state` (computed once by `transformer_init`)."""
    log = get_run_logger()
    model = build_transformer(study, seed)
    if state is not None:
        model.load_state_dict(state)
    model = model.to(device)
    out = train_seq(model, study.task, study.train, lr, device, seed)
    log.info(
        "Post-LN %s lr %g: test token acc %.3f, loss %.3f -> %.3f (%s%s)",
        init,
        lr,
        out["final_test_acc"],
        out["initial_loss"],
        out["final_train_loss"],
        "trains" if out["trains"] else "fails",
        ", diverged" if out["diverged"] else "",
    )
    return {**out, "init": init}
