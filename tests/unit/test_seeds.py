"""Seeds: stable named seeds, and model construction that keeps concurrent tasks' initial weights intact."""

from __future__ import annotations

import threading
import time

import torch

from tenfold.core.seeds import isolated, seed_for, seeded


def test_seed_for_is_stable_named_and_in_range():
    assert seed_for(0, "maze", "twin", 8) == seed_for(0, "maze", "twin", 8)
    assert len({seed_for(0, "maze", "twin", 8), seed_for(1, "maze", "twin", 8), seed_for(0, "maze", "twin", 9)}) == 3
    assert 0 <= seed_for(3, "x") < 2**31


def _init_while(other, seed: int = 5) -> torch.Tensor:
    """A `seeded` init (thread A) that draws after a pause, while `other` runs in this thread."""
    started, out = threading.Event(), {}

    def init():
        started.set()
        time.sleep(0.3)  # the window in which a concurrent task builds its net
        return torch.rand(4)

    t = threading.Thread(target=lambda: out.update(w=seeded(seed, init)))
    t.start()
    started.wait()
    other()
    t.join()
    return out["w"]


def test_isolated_construction_does_not_change_a_concurrent_seeded_init():
    expected = seeded(5, lambda: torch.rand(4))
    before = torch.random.get_rng_state()
    assert torch.equal(_init_while(lambda: isolated(lambda: torch.nn.Linear(50, 50))), expected)
    assert torch.equal(torch.random.get_rng_state(), before)  # and the global RNG is left as it was
    # the control: the same construction outside `isolated` draws from the global RNG mid-init and changes it
    assert not torch.equal(_init_while(lambda: torch.nn.Linear(50, 50)), expected)
