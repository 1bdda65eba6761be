"""Prefect tasks of study `secure_release`: data, surrogate, poisons, online release, victims, distances, faces,
and protecting a folder with a saved release service."""

from __future__ import annotations

import time
from pathlib import Path

import torch
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from tenfold.components.data.faces import load_att
from tenfold.components.data.images import load as load_images
from tenfold.components.perturb.models import build
from tenfold.components.perturb.pgd import accuracy
from tenfold.components.perturb.train import fit, pgd_at_loss
from tenfold.core.seeds import seeded
from tenfold.studies.secure_release.evaluate import (
    STRONG_AUGMENTATIONS,
    epoch_seeds,
    perceptual,
    strong_augmentation_loss,
    train_victim,
)
from tenfold.studies.secure_release.faces import face_tensors, subject_count
from tenfold.studies.secure_release.params import ReleaseData
from tenfold.studies.secure_release.poison import craft, target_gradient, unlearnable
from tenfold.studies.secure_release.service import ReleaseService, protect_folder


@task(name="load-release-data", cache_policy=NO_CACHE)
def load_release_data(cfg: ReleaseData, root: str, seed: int, device):
    """The image set to release (class-stratified seeded subset) as (data, (x, y, x_test, y_test) on device)."""
    data = load_images(cfg.dataset, root, seed).subset(cfg.n_train, cfg.n_test, seed)
    f = lambda a: torch.from_numpy(a).to(device)  # noqa: E731
    get_run_logger().info(
        "%s (%s): %d training, %d test images", data.name, data.source, len(data.x_train), len(data.x_test)
    )
    return data, (f(data.x_train), f(data.y_train), f(data.x_test), f(data.y_test))


@task(name="load-release-faces", cache_policy=NO_CACHE)
def load_faces(roots: list[str], side: int, train_per_subject: int, device):
    """AT&T faces for the face-identification experiment: ((x, y, x_test, y_test), subjects, source)."""
    faces = load_att([Path(r) for r in roots])
    return face_tensors(faces, side, train_per_subject, device), subject_count(faces), faces.source


@task(name="train-surrogate", cache_policy=NO_CACHE)
def train_surrogate(x, y, x_test, y_test, cfg, num_classes: int, seed: int):
    """Train the fixed surrogate and compute the target gradient g_t of the reverse cross-entropy."""
    model = seeded(seed, lambda: build(cfg.arch, x.shape[1], num_classes, x.shape[-1])).to(x.device)
    fit(model, x, y, cfg.epochs, cfg.lr, cfg.batch_size, seed, epoch_seeds=epoch_seeds(seed, cfg.epochs))
    acc = accuracy(model, x_test, y_test)
    get_run_logger().info("surrogate %s: clean test accuracy %.3f", cfg.arch, acc)
    return model, target_gradient(model, x, y), acc


@task(name="craft-release", cache_policy=NO_CACHE)
def craft_release(method: str, model, g_t, x, y, p, num_classes: int, seed: int):
    """Batch release with one method; returns (released images, crafting seconds, info). `info` carries the
    unlearnable noise's rounds and whether its stop rule (error on the noisy data < stop_error) ended it."""
    t0 = time.perf_counter()
    info: dict = {}
    c, eps = p.craft, p.craft.eps / 255
    if method == "unlearnable":
        u = p.unlearnable
        fresh = seeded(seed, lambda: build(p.surrogate.arch, x.shape[1], num_classes, x.shape[-1])).to(x.device)
        out, rounds, err = unlearnable(
            fresh, x, y, eps, u.steps, eps / 5, u.train_steps, u.stop_error, u.max_rounds, seed=seed
        )
        info = {"rounds": rounds, "final_error": err, "stopped_by_error": err < u.stop_error}
        get_run_logger().info("unlearnable noise: %d rounds (stop rule met: %s)", rounds, info["stopped_by_error"])
    else:
        out = craft(
            method,
            model,
            x,
            y,
            eps,
            c.steps,
            c.tau * eps,
            c.restarts,
            c.augment,
            c.batch_size,
            num_classes,
            g_t,
            seed,
            c.schedule,
        )
    secs = time.perf_counter() - t0
    get_run_logger().info("%s release of %d images: %.1f s", method, len(x), secs)
    return out, secs, info


@task(name="online-release", cache_policy=NO_CACHE)
def online_release(svc: ReleaseService, x, y, batch_size: int):
    """Release the training set item by item (`batch_size` per call); returns (images, images per second,
    seconds spent protecting)."""
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
):
    """Train a victim from scratch on (possibly released) data; `counter`: none | adversarial_training | mixup |
    cutmix (the strong augmentations come from the dataset-security registry)."""
    loss = None
    if counter == "adversarial_training":
        loss = pgd_at_loss(
            counter_cfg.at_eps / 255, counter_cfg.at_steps, 2.5 * counter_cfg.at_eps / 255 / counter_cfg.at_steps
        )
    elif counter in STRONG_AUGMENTATIONS:
        loss = strong_augmentation_loss(counter, counter_cfg.mixup_alpha, num_classes, counter_cfg.mixup_nway)
    kw = {} if loss is None else {"loss_fn": loss}
    acc, _ = train_victim(arch, x, y, x_test, y_test, cfg.epochs, cfg.lr, cfg.batch_size, seed, num_classes, **kw)
    get_run_logger().info("victim %s on %s (%s): clean test accuracy %.3f", arch, label, counter, acc)
    return acc


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
