"""Prefect tasks of the `maze` study: build and load maze files, train a maze net, evaluate exact match."""

from __future__ import annotations

import tempfile
from pathlib import Path

from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from tasks._task import task
from tasks.ddp import run_torchrun
from tasks.progress import progress as track_progress
from tenfold.components.models.recurrent import SegmentNet, count_parameters
from tenfold.core.artifacts import torch_load
from tenfold.core.checkpoints import Checkpoint
from tenfold.core.runtime import atomic_savez, channels_last
from tenfold.core.seeds import seeded
from tenfold.studies.maze import dataset
from tenfold.studies.maze.params import MazeTrain
from tenfold.studies.maze.train import evaluate, predict, train


def maze_file(root: str | Path, split: str, size: int) -> Path:
    return Path(root) / "mazes" / f"{split}_{size}.npz"


@task(name="build-maze-file", cache_policy=NO_CACHE)
def build_maze_file(path: str, count: int, size: int, scale: int, seed: int) -> dict:
    meta = dataset.build(path, count, size, scale, seed)
    get_run_logger().info("built %d mazes of size %d (scale %d) -> %s", count, size, scale, path)
    return meta


@task(name="load-mazes", cache_policy=NO_CACHE)
def load_mazes(path: str, size: int, scale: int):
    return dataset.load(path, expect_size=size, expect_scale=scale)


@task(name="train-maze-net", cache_policy=NO_CACHE)
def train_maze(
    codes,
    targets,
    width: int,
    iters: int,
    recurrent: bool,
    recall: bool,
    init: str,
    cfg: MazeTrain,
    device,
    seed: int,
    checkpoint: Checkpoint,
    progress: bool = False,
    nproc: int = 1,
    threads: int = 1,
):
    """Train one maze net; with `nproc > 1` data-parallel under torchrun (rank 0 checkpoints, this task logs)."""
    log = get_run_logger()
    net = {"width": width, "iters": iters, "recurrent": recurrent, "recall": recall, "init": init}
    model = channels_last(seeded(seed, lambda: SegmentNet(**net)))
    kind = "recurrent" if recurrent else "feed-forward"
    log.info(
        "training %s net: width %d, %d iterations (effective depth %d), %d parameters, %d mazes, %d process(es)",
        kind,
        width,
        iters,
        model.effective_depth,
        count_parameters(model),
        len(codes),
        nproc,
    )
    if nproc > 1:
        with tempfile.TemporaryDirectory(prefix="maze-ddp-") as tmp:
            atomic_savez(Path(tmp) / "data.npz", compress=False, codes=codes, targets=targets)
            spec = {
                "data": str(Path(tmp) / "data.npz"),
                "net": net,
                "cfg": cfg.model_dump(),
                "seed": seed,
                "checkpoint": None if checkpoint.path is None else str(checkpoint.path),
                "fingerprint": checkpoint.fingerprint,
                "threads": threads,
                "device": str(device),
            }
            state = torch_load(run_torchrun("tenfold.studies.maze.distributed", spec, nproc, tmp))
        model.load_state_dict(state["model"])
        for rec in state["history"]:
            log.info("%s epoch %d loss %.4f (%d processes)", kind, rec["epoch"], rec["loss"], nproc)
        return model, state["history"]

    def on_epoch(rec, step):
        log.info("%s epoch %d loss %.4f", kind, rec["epoch"], rec["loss"])
        step()

    with track_progress(f"maze: train {kind} net ({iters} iterations)", cfg.epochs, progress) as step:
        history = train(
            model,
            codes,
            targets,
            cfg,
            device,
            seed=seed,
            checkpoint=checkpoint,
            progress=progress,
            on_epoch=lambda rec: on_epoch(rec, step),
        )
    return model, history


@task(name="evaluate-mazes", cache_policy=NO_CACHE)
def evaluate_mazes(
    model, codes, targets, iter_list: list[int], device, batch_size: int, label: str
) -> dict[int, float]:
    acc = evaluate(model, codes, targets, iter_list, device, batch_size)
    best = max(acc, key=acc.get)
    get_run_logger().info("%s: best exact match %.3f at %d iterations", label, acc[best], best)
    return acc


@task(name="predict-mazes", cache_policy=NO_CACHE)
def predict_mazes(model, codes, iters: int, device):
    return predict(model, codes, iters, device)
