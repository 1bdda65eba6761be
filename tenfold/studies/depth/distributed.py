"""`torchrun` entry point: train one depth-study classifier data-parallel over N processes.

    python -m torch.distributed.run --standalone --nproc_per_node 2 -m tenfold.studies.depth.distributed SPEC.json

SPEC (written by the depth training task when `common.nproc > 1`): the standardised training arrays (.npz), the
net (family, depth, recurrent, width, input shape, classes, init), the training config and lr, the initial-weight
and shuffle seeds, the checkpoint path and fingerprint, the output path and torch threads per rank. Every rank
builds the same initial weights from the init seed and sees the same global batches; rank 0 writes the checkpoint
each epoch and, at the end, the trained weights and history to the output path.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import torch

from tenfold.components import distributed
from tenfold.core.checkpoints import Checkpoint
from tenfold.core.runtime import atomic_torch_save, channels_last
from tenfold.core.seeds import seeded
from tenfold.studies.depth.models import DepthNet
from tenfold.studies.depth.params import DepthTrain
from tenfold.studies.depth.train import train


def build(net: dict) -> DepthNet:
    """The net of a SPEC's `net` entry, with its initial weights drawn from `net["init_seed"]`."""
    return channels_last(
        seeded(
            net["init_seed"],
            lambda: DepthNet(
                net["family"],
                net["depth"],
                net["recurrent"],
                net["width"],
                tuple(net["shape"]),
                net["classes"],
                net["init"],
            ),
        )
    )


def main(spec_path: str) -> int:
    spec = json.loads(open(spec_path).read())
    torch.set_num_threads(int(spec.get("threads") or 1))
    distributed.init()
    cuda = spec.get("device", "cpu").startswith("cuda") and torch.cuda.is_available()
    device = torch.device(f"cuda:{os.environ.get('LOCAL_RANK', '0')}" if cuda else "cpu")
    with np.load(spec["data"]) as z:
        xtr, ytr = torch.as_tensor(z["x"]).to(device), torch.as_tensor(z["y"]).to(device)
    model = build(spec["net"]).to(device)
    ckpt = Checkpoint(spec["checkpoint"], spec.get("fingerprint", "")) if spec.get("checkpoint") else None
    cfg, seed = DepthTrain(**spec["cfg"]), int(spec["shuffle_seed"])
    # `epochs`: stop after that many (tests: a run killed there); the schedule stays cfg.epochs's
    history = train(model, xtr, ytr, cfg, float(spec["lr"]), seed, ckpt, stop_after=spec.get("epochs"))
    if distributed.is_main():
        state = {"model": model.cpu().state_dict(), "history": history, "world_size": distributed.world_size()}
        atomic_torch_save(spec["out"], state)
    distributed.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
