"""Time of one GradInit iteration vs one plain training step on the same model and batch (on demand only).

    python benchmarks/bench_gradinit.py [--model vgg|resnet|postln] [--reps 10]

A GradInit iteration costs a forward/backward with `create_graph=True`, a second forward at the stepped
parameters and a double backward to the scales; the paper's note puts it at roughly 2-3x a training step.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from tenfold.studies.gradinit.algorithm import batch_stream, gradinit, sample_stream
from tenfold.studies.gradinit.models import VGG, PostLNTransformer, ResNet
from tenfold.studies.gradinit.params import GradInitConfig
from tenfold.studies.gradinit.seqtask import make_batch, token_loss


def setup(name: str, batch: int):
    g = torch.Generator().manual_seed(0)
    if name == "postln":
        model = PostLNTransformer(10, 8, d_model=32, heads=4, layers=8, ffn=64)
        return model, sample_stream(lambda gen: make_batch("sort", batch, 8, 10, gen), 0), token_loss, "adam"
    model = VGG(11, 0.25, 3, 10, 32) if name == "vgg" else ResNet(3, 16, 3, 10)
    x, y = torch.rand(4 * batch, 3, 32, 32, generator=g), torch.randint(0, 10, (4 * batch,), generator=g)
    return model, batch_stream(x, y, batch, 0), F.cross_entropy, "sgd"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="vgg", choices=["vgg", "resnet", "postln"])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model, stream, loss_fn, alg = setup(a.model, a.batch)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)  # lr 0: same model state for both timings
    x, y = next(stream)
    for _ in range(2):  # warm-up
        loss_fn(model(x), y).backward()
    t = time.perf_counter()
    for _ in range(a.reps):
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
    step = (time.perf_counter() - t) / a.reps
    cfg = GradInitConfig(alg=alg, iters=a.reps, batch_size=a.batch, gamma=1e9 if alg == "adam" else 1.0)
    t = time.perf_counter()
    gradinit(model, stream, loss_fn, cfg)
    it = (time.perf_counter() - t) / a.reps
    print(
        f"{a.model}: plain training step {1e3 * step:.1f} ms, GradInit iteration {1e3 * it:.1f} ms, "
        f"ratio {it / step:.2f}x (batch {a.batch}, {a.threads} thread(s))"
    )


if __name__ == "__main__":
    main()
