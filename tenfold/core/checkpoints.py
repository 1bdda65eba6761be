"""One checkpoint helper for every training loop: fingerprinted, atomic, resumable.

    ckpt = Checkpoint(path, fingerprint(config, data_md5, seed))
    state = ckpt.load()          # None: start from scratch
    ...
    ckpt.save(epoch=e + 1, model=model.state_dict(), optimizer=opt.state_dict(), history=history)

A checkpoint is never silently discarded: one made with other params or data (fingerprint mismatch) is ignored
with a log line saying so and overwritten by the new run; a file that cannot be read (truncated, corrupt, not a
checkpoint) raises `CheckpointError` naming the file and how to clear it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from tenfold.core.errors import ArtifactError
from tenfold.core.runtime import atomic_torch_save

log = logging.getLogger("tenfold.checkpoints")


class CheckpointError(ArtifactError):
    """A checkpoint file exists but cannot be loaded."""


class Checkpoint:
    """A resumable training state at `path`, valid only for runs with the same `fingerprint`.

    `path=None` disables checkpointing (load returns None, save does nothing)."""

    def __init__(self, path: str | Path | None, fingerprint: str):
        self.path = None if path is None else Path(path)
        self.fingerprint = fingerprint

    def __bool__(self) -> bool:
        return self.path is not None

    def load(self, map_location: Any = "cpu") -> dict | None:
        """The saved state if the file exists and matches the fingerprint; None otherwise (logged)."""
        if self.path is None or not self.path.exists():
            return None
        try:
            state = torch.load(self.path, map_location=map_location, weights_only=True)
        except Exception as e:  # noqa: BLE001 - torch raises several types for a bad file
            raise CheckpointError(
                self.path,
                f"cannot load this checkpoint (truncated or corrupt: {type(e).__name__}); "
                f"delete it (`rm {self.path}`) to train from scratch",
            ) from None
        if not isinstance(state, dict) or "fingerprint" not in state:
            raise CheckpointError(
                self.path,
                f"not a tenfold checkpoint (no fingerprint); delete it (`rm {self.path}`) to train from scratch",
            )
        if state["fingerprint"] != self.fingerprint:
            log.warning(
                "%s: made with other params, data or seed (fingerprint %s, this run %s); starting over",
                self.path,
                state["fingerprint"],
                self.fingerprint,
            )
            return None
        return state

    def save(self, **state: Any) -> None:
        """Write `state` plus the fingerprint atomically (a kill mid-write leaves the previous checkpoint)."""
        if self.path is not None:
            atomic_torch_save(self.path, {**state, "fingerprint": self.fingerprint})
