"""Training tasks: build a model deterministically, train it with checkpoints, return it with its history."""
from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from tenfold.mazes.params import MazeTrain
from tenfold.mazes.train import train as train_maze_net
from tenfold.models.recurrent import SegmentNet, count_parameters
from tenfold.runtime import seeded


@task(name="train-maze-net", cache_policy=NO_CACHE)
def train_maze(codes, targets, width: int, iters: int, recurrent: bool, recall: bool, init: str, cfg: MazeTrain,
               device, seed: int, checkpoint: str, fingerprint: str, progress: bool = False):
    log = get_run_logger()
    model = seeded(seed, lambda: SegmentNet(width=width, iters=iters, recurrent=recurrent, recall=recall,
                                               init=init))
    kind = "recurrent" if recurrent else "feed-forward"
    log.info("training %s net: width %d, %d iterations (effective depth %d), %d parameters, %d mazes",
             kind, width, iters, model.effective_depth, count_parameters(model), len(codes))
    history = train_maze_net(model, codes, targets, cfg, device, seed=seed, checkpoint=checkpoint,
                             fingerprint=fingerprint, progress=progress,
                             on_epoch=lambda r: log.info("%s epoch %d loss %.4f", kind, r["epoch"], r["loss"]))
    return model, history
