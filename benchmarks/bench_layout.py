"""Channels-last vs the default (NCHW) weight layout: one SGD step (forward, backward, update) of each study's conv
net at its CPU-default size, 1 thread, both layouts in one run. `tenfold.core.runtime.channels_last` is what the
studies use; the ratio is default time / channels-last time (> 1: channels-last is faster).

    python -m benchmarks.bench_layout [--steps 15] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F

from tenfold.components.models.facemodels import ARCHITECTURES
from tenfold.components.models.recurrent import SegmentNet
from tenfold.components.perturb.models import ConvNet, SmallCNN
from tenfold.components.victims import ResNet
from tenfold.core.runtime import channels_last
from tenfold.studies.depth.models import DepthNet
from tenfold.studies.fairness.models import ResNetSmall
from tenfold.studies.gradinit.models import VGG
from tenfold.studies.smoothing.models import ConvAutoencoder

# name -> (constructor, input shape, input gradient as well: the attacks' and LowKey's step)
NETS = {
    "security victim ResNet-8 (batch 64)": (
        lambda: ResNet(3, 10, 16, (1, 1, 1), first_stride=2),
        (64, 3, 32, 32),
        False,
    ),
    "secure_release/minimax cnn (batch 128)": (lambda: ConvNet(3, 10, 32), (128, 3, 32, 32), False),
    "secure_release smallcnn (batch 128)": (lambda: SmallCNN(3, 10, 32), (128, 3, 32, 32), False),
    "gradinit VGG-19/8 (batch 64)": (lambda: VGG(19, 0.125), (64, 3, 32, 32), False),
    "depth residual d15 w12 (batch 32)": (
        lambda: DepthNet("residual", 15, True, 12, (3, 32, 32), 10),
        (32, 3, 32, 32),
        False,
    ),
    "fairness ResNet w4 (batch 128; kept NCHW)": (lambda: ResNetSmall(3, 4), (128, 3, 32, 32), False),
    "smoothing autoencoder (batch 100)": (
        lambda: ConvAutoencoder((1, 28, 28), 32, (8, 16, 32)),
        (100, 1, 28, 28),
        False,
    ),
    "maze recurrent w32 x10 (batch 32)": (lambda: SegmentNet(32, 10), (32, 3, 32, 32), False),
    "lowkey MobileFaceNet (20 faces, input grad)": (ARCHITECTURES["mobilefacenet_ms1m"], (20, 3, 112, 112), True),
}


def step_ms(make, shape, input_grad: bool, layout: bool, steps: int) -> float:
    torch.manual_seed(0)
    model = make()
    if layout:
        channels_last(model)
    x = torch.rand(*shape, requires_grad=input_grad)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def step():
        out = model(x)
        loss = F.mse_loss(out, torch.zeros_like(out))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - t) / steps * 1000


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    out = {"threads": a.threads, "steps": a.steps, "nets": {}}
    for name, (make, shape, grad) in NETS.items():
        # alternate the two layouts twice and keep each one's best: drift on a shared machine hits both alike
        runs = {lay: [] for lay in (False, True)}
        for _ in range(2):
            for lay in (False, True):
                runs[lay].append(step_ms(make, shape, grad, lay, a.steps))
        nchw, nhwc = min(runs[False]), min(runs[True])
        out["nets"][name] = {
            "nchw_ms": round(nchw, 1),
            "channels_last_ms": round(nhwc, 1),
            "ratio": round(nchw / nhwc, 2),
        }
        print(f"{name:46s} NCHW {nchw:7.1f} ms  channels-last {nhwc:7.1f} ms  ratio {nchw / nhwc:.2f}x", flush=True)
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
