"""Every random draw's seed comes from one function, `seed_for(base, slug, *parts)`.

A study never adds offsets by hand (`seed + 7`, `seed * 1000 + trial`): it names what the draw is for
(`seed_for(base, "maze", "twin", 8)`, `seed_for(base, "depth", "shuffle", seed_index, epoch)`) and gets an
independent, stable 31-bit seed (as DomainBed's `seed_hash`). Draws inside tasks use explicit generators made from
such seeds, never the global RNG, so runs are bit-identical at the same seed and thread count even when tasks run
in parallel.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def seed_for(base: int, slug: str, *parts: Any) -> int:
    """A stable seed in [0, 2**31) for the draw named by (`base`, `slug`, *parts`)."""
    blob = json.dumps([int(base), str(slug), *[str(p) for p in parts]])
    return int(hashlib.md5(blob.encode()).hexdigest(), 16) % (2**31)


def generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch generator seeded with `seed` (on `device`)."""
    return torch.Generator(device=device).manual_seed(int(seed))


def rng(seed: int) -> np.random.Generator:
    """A numpy generator seeded with `seed`."""
    return np.random.default_rng(int(seed))


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch's global RNGs (a safety net for third-party code; ours uses generators)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


_INIT_LOCK = threading.Lock()


def seeded(seed: int, fn: Callable[[], Any]) -> Any:
    """Run `fn` (e.g. a model constructor, whose init draws from torch's global RNG) with that RNG seeded,
    serialized across threads, so concurrent tasks still build bit-identical initial weights."""

    def run():
        torch.manual_seed(seed)
        return fn()

    return isolated(run)


def isolated(fn: Callable[[], Any]) -> Any:
    """Run `fn` (e.g. building a net whose random init is then overwritten by loaded weights) without disturbing
    torch's global RNG: serialized with `seeded`, and the RNG state restored afterwards. A construction outside
    both would draw from the global RNG while a concurrent task's `seeded` init is running, and change it."""
    with _INIT_LOCK:
        state = torch.random.get_rng_state()
        try:
            return fn()
        finally:
            torch.random.set_rng_state(state)


class SeededDropout(nn.Module):
    """Dropout drawing its masks from its own generator (set by `seed_dropout`), so a training run gives the same
    result whatever other threads do with torch's global RNG (tasks run concurrently in a thread pool; `nn.Dropout`
    draws from that global RNG). Without a generator it is ordinary dropout."""

    def __init__(self, p: float):
        super().__init__()
        self.p, self.gen = p, None

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        if self.gen is None:
            return F.dropout(x, self.p, True)
        keep = torch.rand(x.shape, generator=self.gen, device=self.gen.device) >= self.p
        return x * keep.to(x.device) / (1 - self.p)


def seed_dropout(model: nn.Module, seed: int) -> int:
    """Give every `SeededDropout` of `model` one generator seeded with `seed`; returns how many there are."""
    gen = torch.Generator().manual_seed(int(seed))
    layers = [m for m in model.modules() if isinstance(m, SeededDropout)]
    for m in layers:
        m.gen = gen
    return len(layers)
