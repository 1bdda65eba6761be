"""Training throughput of tenfold's maze loop vs a plain PyTorch loop: same model, data, batch and optimizer.

The plain loop is the minimal one a researcher would write (forward, masked loss, backward, clip, step), so the
ratio shows what tenfold's loop (progressive-loss sampling, lr schedule, per-epoch checkpointing) costs.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from tenfold.components.models.recurrent import SegmentNet
from tenfold.core.seeds import seeded
from tenfold.studies.maze.generate import generate
from tenfold.studies.maze.params import MazeTrain
from tenfold.studies.maze.train import batch_tensors, make_optimizer, masked_ce, train


def plain_loop(model, codes, targets, cfg, epochs):
    opt = make_optimizer(model, cfg)
    n = len(codes)
    for epoch in range(epochs):
        perm = np.random.default_rng(epoch).permutation(n)
        for lo in range(0, n, cfg.batch_size):
            x, y, m = batch_tensors(codes, targets, perm[lo : lo + cfg.batch_size], "cpu")
            loss = masked_ce(model(x), y, m)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
            opt.step()


def run(n: int = 1024, epochs: int = 2, width: int = 32, iters: int = 10, rounds: int = 2) -> dict:
    d = generate(n, 9, scale=1, seed=0)
    cfg = MazeTrain(epochs=epochs, batch_size=32, alpha=0.0, warmup_epochs=0.2, clip=1.0, recurrent_lr_by_iters=False)
    make = lambda: seeded(0, lambda: SegmentNet(width, iters, True, True, init="kaiming_zero_residual"))
    plain_loop(make(), d["codes"][:64], d["targets"][:64], cfg, 1)  # warm-up
    plain, ours = float("inf"), float("inf")
    for _ in range(rounds):  # alternate, keep the best of each: background load hits both alike
        t = time.perf_counter()
        plain_loop(make(), d["codes"], d["targets"], cfg, epochs)
        plain = min(plain, time.perf_counter() - t)
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            train(make(), d["codes"], d["targets"], cfg, torch.device("cpu"), seed=0, checkpoint=Path(tmp) / "c.pt")
            ours = min(ours, time.perf_counter() - t)
    return {
        "mazes_per_second_plain": round(n * epochs / plain, 1),
        "mazes_per_second_tenfold": round(n * epochs / ours, 1),
        "tenfold_over_plain_time": round(ours / plain, 3),
        "torch_threads": torch.get_num_threads(),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
