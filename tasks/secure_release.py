"""Prefect tasks of study `secure_release`: data, surrogate, poisons (one task per poison batch), online release,
victims, distances, faces, and protecting a folder with a saved release service."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from tasks._task import task
from tasks.progress import progress
from tenfold.components.data import cifar10
from tenfold.components.data.faces import load_att
from tenfold.components.data.images import load as load_images
from tenfold.components.perturb.pgd import accuracy
from tenfold.components.perturb.train import fit, pgd_at_loss
from tenfold.core.seeds import rng, seeded
from tenfold.studies.secure_release.evaluate import (
    STRONG_AUGMENTATIONS,
    channel_stats,
    epoch_seeds,
    perceptual,
    strong_augmentation_loss,
    train_victim,
)
from tenfold.studies.secure_release.faces import face_tensors, subject_count
from tenfold.studies.secure_release.nets import build_net, crop_flip
from tenfold.studies.secure_release.params import ReleaseData
from tenfold.studies.secure_release.poison import craft, target_gradient, unlearnable
from tenfold.studies.secure_release.service import ReleaseService, protect_folder


@task(name="load-release-data", cache_policy=NO_CACHE)
def load_release_data(cfg: ReleaseData, root: str, seed: int, order_seed: int, device):
    """The image set to release (class-stratified seeded subset, in a seeded random order so that every poison
    batch and every online call mixes the classes, as the lab's loader over CIFAR-10's own order does) as
    (data, (x, y, x_test, y_test) on device, normalisation stats (mean, std) or None). CIFAR-10 comes from the
    arrays of the DVC stage `build_cifar10` (stored class by class)."""
    full = cifar10.load(Path(root) / "cifar10") if cfg.dataset == "cifar10" else load_images(cfg.dataset, root, seed)
    data = full.subset(cfg.n_train, cfg.n_test, seed)
    order = rng(order_seed).permutation(len(data.y_train))
    data.x_train, data.y_train = data.x_train[order], data.y_train[order]
    f = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(device)  # noqa: E731
    x = f(data.x_train)
    stats = channel_stats(x) if cfg.normalize else None
    get_run_logger().info(
        "%s (%s): %d training, %d test images", data.name, data.source, len(data.x_train), len(data.x_test)
    )
    return data, (x, f(data.y_train), f(data.x_test), f(data.y_test)), stats


@task(name="load-release-faces", cache_policy=NO_CACHE)
def load_faces(roots: list[str], side: int, train_per_subject: int, device):
    """AT&T faces for the face-identification experiment: ((x, y, x_test, y_test), subjects, source)."""
    faces = load_att([Path(r) for r in roots])
    return face_tensors(faces, side, train_per_subject, device), subject_count(faces), faces.source


@task(name="train-surrogate", cache_policy=NO_CACHE)
def train_surrogate(x, y, x_test, y_test, cfg, num_classes: int, seed: int, stats=None):
    """Train the fixed surrogate and compute the target gradient g_t of the reverse cross-entropy over the
    training set (on the surrogate in eval mode)."""
    mean, std = stats if stats is not None else (None, None)
    model = seeded(seed, lambda: build_net(cfg.arch, tuple(x.shape[1:]), num_classes, mean, std)).to(x.device)
    fit(
        model,
        x,
        y,
        cfg.epochs,
        cfg.lr,
        cfg.batch_size,
        seed,
        epoch_seeds=epoch_seeds(seed, cfg.epochs),
        augment=crop_flip() if getattr(cfg, "augment", False) else None,
        warmup_epochs=getattr(cfg, "warmup_epochs", 0.0),
    )
    acc = accuracy(model, x_test, y_test)
    get_run_logger().info(
        "surrogate %s: clean test accuracy %.3f (training set %.3f)", cfg.arch, acc, accuracy(model, x, y)
    )
    return model, target_gradient(model, x, y), acc


@task(name="craft-batch", cache_policy=NO_CACHE)
def craft_batch(
    method: str,
    model,
    g_t,
    x,
    y,
    eps: float,
    steps: int,
    tau: float,
    restarts: int,
    augment: bool,
    flip: bool,
    schedule: str,
    num_classes: int,
    seed: int,
    snapshots: tuple[int, ...] = (),
    show_progress: bool = False,
    label: str = "secure_release: craft",
):
    """One poison batch (one cosine for alignment) with one method; returns (released images, CPU seconds,
    {k: the iterate after k steps} for k in `snapshots`, the final objective on the surrogate for alignment). A bar
    of the crafting steps when `show_progress`, a Prefect progress artifact inside a run."""
    t0 = time.thread_time()
    snaps: dict[int, torch.Tensor] = {}
    keep = set(snapshots)

    with progress(label, steps * restarts, show_progress and method != "random_noise") as step:

        def on_step(r, i, xa):
            if r == 0 and i in keep:
                snaps[i] = xa.clone()
            step()

        out = craft(
            method,
            model,
            x,
            y,
            eps,
            steps,
            tau * eps,
            restarts,
            augment,
            len(x),
            num_classes,
            g_t,
            seed,
            schedule,
            flip,
            on_step=on_step,
        )
    info = {}
    if method == "alignment":
        from tenfold.studies.secure_release.poison import alignment_objective

        with torch.enable_grad():
            fn = alignment_objective(model, y, g_t)
            info = {"loss_clean": float(fn(x).detach()), "loss_released": float(fn(out).detach())}
    return out, time.thread_time() - t0, snaps, info


@task(name="craft-unlearnable", cache_policy=NO_CACHE)
def craft_unlearnable(x, y, p, num_classes: int, seed: int, stats=None):
    """Error-minimising noise (min-min) with a fresh surrogate of the surrogate's architecture; returns (released
    images, CPU seconds, info with the rounds and whether the stop rule ended it)."""
    t0 = time.thread_time()
    u, eps = p.unlearnable, p.craft.eps / 255
    mean, std = stats if stats is not None else (None, None)
    fresh = seeded(seed, lambda: build_net(p.surrogate.arch, tuple(x.shape[1:]), num_classes, mean, std)).to(x.device)
    out, rounds, err = unlearnable(
        fresh, x, y, eps, u.steps, u.tau * eps, u.train_steps, u.stop_error, u.max_rounds, seed=seed
    )
    info = {"rounds": rounds, "final_error": err, "stopped_by_error": err < u.stop_error}
    get_run_logger().info("unlearnable noise: %d rounds (stop rule met: %s)", rounds, info["stopped_by_error"])
    return out, time.thread_time() - t0, info


@task(name="online-release", cache_policy=NO_CACHE)
def online_release(svc: ReleaseService, x, y, batch_size: int):
    """Release the training set item by item (`batch_size` per call); returns (images, images per second,
    wall seconds spent protecting)."""
    out = svc.protect_stream(x, y, batch_size)
    get_run_logger().info("online release: %d images at %.1f images/s", len(x), svc.images_per_second)
    return out, svc.images_per_second, svc.seconds


@task(name="train-victim", cache_policy=NO_CACHE)
def victim(
    arch: str,
    x,
    y,
    x_test,
    y_test,
    cfg,
    seed: int,
    num_classes: int,
    counter: str = "none",
    counter_cfg=None,
    label: str = "",
    stats=None,
    curve: bool | list[int] = False,
):
    """Train a victim from scratch on (possibly released) data; `counter`: none | adversarial_training | mixup |
    cutmix (the strong augmentations come from the dataset-security registry). Returns (clean test accuracy,
    clean test accuracy per epoch if `curve` (None at the epochs `curve` does not list), CPU seconds)."""
    t0 = time.thread_time()
    loss = None
    if counter == "adversarial_training":
        loss = pgd_at_loss(
            counter_cfg.at_eps / 255, counter_cfg.at_steps, 2.5 * counter_cfg.at_eps / 255 / counter_cfg.at_steps
        )
    elif counter in STRONG_AUGMENTATIONS:
        loss = strong_augmentation_loss(counter, counter_cfg.mixup_alpha, num_classes, counter_cfg.mixup_nway)
    kw = {} if loss is None else {"loss_fn": loss}
    acc, _, accs = train_victim(
        arch,
        x,
        y,
        x_test,
        y_test,
        cfg.epochs,
        cfg.lr,
        cfg.batch_size,
        seed,
        num_classes,
        augment=getattr(cfg, "augment", False),
        warmup_epochs=getattr(cfg, "warmup_epochs", 0.0),
        stats=stats,
        curve=curve,
        **kw,
    )
    get_run_logger().info("victim %s on %s (%s): clean test accuracy %.3f", arch, label, counter, acc)
    return acc, accs, time.thread_time() - t0


@task(name="perceptual-distance", cache_policy=NO_CACHE)
def perceptual_distance(clean, released) -> dict[str, float]:
    """Mean PSNR, SSIM and realised l_inf (/255) of released images against the clean ones."""
    return perceptual(clean, released)


@task(name="protect-folder", cache_policy=NO_CACHE)
def protect_new_files(svc: ReleaseService, in_dir: str, out_dir: str, batch_size: int) -> dict:
    """Protect the images of `in_dir` that have no output in `out_dir` yet (atomic writes, originals untouched)."""
    r = protect_folder(svc, in_dir, out_dir, batch_size)
    if r["protected"]:
        get_run_logger().info("protected %d new images (%.1f images/s)", r["protected"], r["images_per_second"] or 0)
    return r
