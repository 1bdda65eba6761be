"""Prefect tasks of the `smoothing` study: load the images, train a base model with Gaussian noise, certify inputs
with `Smooth`, and log the measurements on the study's MLflow run."""

from __future__ import annotations

import copy
import time

import numpy as np
import torch
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from tasks._task import task
from tasks.progress import progress
from tenfold.components.data import images as image_data
from tenfold.core.runtime import channels_last
from tenfold.core.seeds import seed_for, seeded
from tenfold.studies.smoothing.experiment import certify_inputs, per_input, summarize
from tenfold.studies.smoothing.models import ConvAutoencoder, CSReconstructor, gaussian_matrix
from tenfold.studies.smoothing.params import SmoothConfig, TrainConfig
from tenfold.studies.smoothing.smooth import Smooth
from tenfold.studies.smoothing.train import reconstruction_mse, train_denoising


def build_base(kind: str, shape: tuple, cfg, seed: int) -> torch.nn.Module:
    """The untrained autoencoder or reconstructor of a task section (`cfg`), with weights (and the reconstructor's
    measurement matrix) drawn from seeds named after `seed`."""
    init = seed_for(seed, "smoothing", "init")
    if kind == "autoencoder":
        return channels_last(seeded(init, lambda: ConvAutoencoder(shape, cfg.latent_dim, tuple(cfg.widths))))
    if kind == "reconstructor":
        matrix = gaussian_matrix(int(np.prod(shape)), cfg.measurements, seed_for(seed, "smoothing", "matrix"))
        return channels_last(seeded(init, lambda: CSReconstructor(matrix, shape, tuple(cfg.widths))))
    raise ValueError(f"unknown base model {kind!r}")


def _to_input(model):
    return model.measure if isinstance(model, CSReconstructor) else None


@task(name="smoothing-load-images", cache_policy=NO_CACHE)
def load_images(dataset: str, data_root: str, seed: int) -> image_data.ImageData:
    """The image dataset of the autoencoder and reconstructor tasks (seeded train/test split)."""
    data = image_data.load(dataset, data_root, seed=seed)
    get_run_logger().info(
        "%s (%s): %d training, %d test images", data.name, data.source, len(data.x_train), len(data.x_test)
    )
    return data


@task(name="smoothing-train-base", cache_policy=NO_CACHE)
def train_base(
    kind: str,
    images: np.ndarray,
    test_images: np.ndarray,
    cfg,
    sigma: float,
    device,
    seed: int,
    show_progress: bool = False,
):
    """Train the task's base model with noise `sigma`; returns (model in eval mode, history, test MSE). Weights,
    training order and noise, and the test noise come from seeds named after `seed`. A bar of the training epochs
    when `show_progress`, a Prefect progress artifact inside a run."""
    log = get_run_logger()
    model = build_base(kind, tuple(images.shape[1:]), cfg, seed)
    tc: TrainConfig = cfg.train
    x = images[: tc.n_train] if tc.n_train else images
    t0 = time.time()
    with progress(f"smoothing: train {kind} sigma {sigma:g}", tc.epochs, show_progress) as step:
        history = train_denoising(
            model,
            x,
            sigma,
            tc,
            device,
            seed_for(seed, "smoothing", "train"),
            to_input=_to_input(model),
            on_epoch=lambda rec: step(),
        )
    mse = reconstruction_mse(
        model, test_images, sigma, device, seed_for(seed, "smoothing", "test_noise"), to_input=_to_input(model)
    )
    log.info(
        "%s sigma=%g: %d epochs on %d images in %.1fs, loss %.4f, test mse clean %.4f noisy %.4f",
        kind,
        sigma,
        tc.epochs,
        len(x),
        time.time() - t0,
        history[-1]["loss"],
        mse["mse_clean"],
        mse["mse_noisy"],
    )
    if device.type == "cpu":
        model = model.to(memory_format=torch.channels_last)  # faster CPU convolutions, same function
    return model.eval(), history, mse


@task(name="smoothing-certify", cache_policy=NO_CACHE)
def certify(
    task_name: str,
    base,
    inputs: torch.Tensor,
    sigma: float,
    distance: str,
    eps_in: list[float],
    smooth_cfg: SmoothConfig,
    seed: int,
    scale: float = 1.0,
    eval_mode: bool = True,
) -> dict:
    """Certify `inputs` (in the base function's units; sigma and eps_in are multiplied by `scale`) and summarise.

    `eval_mode=False` certifies a copy of the model left in train mode, as the official code did."""
    log = get_run_logger()
    if not eval_mode:
        base = copy.deepcopy(base).train()
    smooth = Smooth(base, distance, sigma * scale, eval_mode=eval_mode, **smooth_cfg.model_dump())
    t0 = time.time()
    certs = certify_inputs(smooth, inputs, eps_in, seed, scale)
    wall = time.time() - t0
    summary = summarize(certs, eps_in)
    log.info(
        "%s sigma=%g %s%s: %d inputs in %.1fs, abstain %.2f, median eps_out %s",
        task_name,
        sigma,
        distance,
        "" if eval_mode else " (BN train mode)",
        len(inputs),
        wall,
        summary[0]["abstain_rate"],
        [r["median_eps_out"] for r in summary],
    )
    return {
        "task": task_name,
        "sigma": sigma,
        "distance": distance,
        "eval_mode": eval_mode,
        "summary": summary,
        "inputs": per_input(certs, eps_in),
        "certificates": certs,
        "seconds": wall,
        "certificates_per_second": len(inputs) / wall if wall else None,
    }


def log_measurements(run, results: dict, training: dict) -> None:
    """Per-eps_in median eps_out, abstain rate and certificate rate of every certification, and the training
    loss curves of the base models, as MLflow metrics of the study's run."""
    for (kind, s, dname), res in results.items():
        for r in res["summary"]:
            run.log_metrics(
                {f"{kind}_{dname}_sigma{s:g}_median_eps_out": r["median_eps_out"]}, step=int(round(r["eps_in"] * 1000))
            )
        run.log_metrics(
            {
                f"{kind}_{dname}_sigma{s:g}_abstain_rate": res["summary"][0]["abstain_rate"],
                f"{kind}_{dname}_sigma{s:g}_cert_per_s": res["certificates_per_second"],
            }
        )
    for (kind, s), (history, _) in training.items():
        for h in history:
            run.log_metrics({f"train_loss_{kind}_sigma{s:g}": h["loss"]}, step=h["epoch"])
