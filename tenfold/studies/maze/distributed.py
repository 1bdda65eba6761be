"""`torchrun` entry point: train one maze net data-parallel over N processes.

    python -m torch.distributed.run --standalone --nproc_per_node 2 -m tenfold.studies.maze.distributed SPEC.json

SPEC (written by the maze training task when `common.nproc > 1`): the training arrays (.npz), the net and training
config, the seed, the checkpoint path and fingerprint, the output path and torch threads per rank. Every rank loads
the same data and builds the same initial weights; rank 0 writes the checkpoint each epoch and, at the end, the
trained weights and history to the output path.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import torch

from tenfold.components import distributed
from tenfold.components.models.recurrent import SegmentNet
from tenfold.core.checkpoints import Checkpoint
from tenfold.core.runtime import atomic_torch_save, channels_last
from tenfold.core.seeds import seeded
from tenfold.studies.maze.params import MazeTrain
from tenfold.studies.maze.train import train


def main(spec_path: str) -> int:
    spec = json.loads(open(spec_path).read())
    torch.set_num_threads(int(spec.get("threads") or 1))
    distributed.init()
    with np.load(spec["data"]) as z:
        codes, targets = z["codes"], z["targets"]
    net = spec["net"]
    model = channels_last(
        seeded(
            spec["seed"],
            lambda: SegmentNet(
                width=net["width"],
                iters=net["iters"],
                recurrent=net["recurrent"],
                recall=net["recall"],
                init=net["init"],
            ),
        )
    )
    ckpt = Checkpoint(spec.get("checkpoint"), spec.get("fingerprint", ""))
    cuda = spec.get("device", "cpu").startswith("cuda") and torch.cuda.is_available()
    device = torch.device(f"cuda:{os.environ.get('LOCAL_RANK', '0')}" if cuda else "cpu")
    history = train(
        model,
        codes,
        targets,
        MazeTrain(**spec["cfg"]),
        device,
        seed=spec["seed"],
        checkpoint=ckpt if spec.get("checkpoint") else None,
        epochs=spec.get("epochs"),
    )
    if distributed.is_main():
        atomic_torch_save(
            spec["out"], {"model": model.state_dict(), "history": history, "world_size": distributed.world_size()}
        )
    distributed.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
