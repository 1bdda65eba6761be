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


def _train_smallcnn(global_seed: int, dropout: torch.nn.Module | None = None) -> list[torch.Tensor]:
    """Two epochs of `fit` on a SmallCNN with the global RNG set to `global_seed` first (another task's draws)."""
    from tenfold.components.perturb.models import build
    from tenfold.components.perturb.train import fit

    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(64, 1, 20, 20, generator=g), torch.arange(64) % 3
    model = seeded(1, lambda: build("smallcnn", 1, 3, 20))
    if dropout is not None:
        model.classifier[3] = dropout
    torch.manual_seed(global_seed)
    fit(model, x, y, 2, 0.05, 16, 0)
    return [p.detach().clone() for p in model.parameters()]


def test_smallcnn_dropout_masks_come_from_the_training_loop_not_the_global_rng():
    a, b = _train_smallcnn(1), _train_smallcnn(2)
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    # the control: torch's own dropout draws from the global RNG, so another task's draws change the training
    c, d = _train_smallcnn(1, torch.nn.Dropout(0.5)), _train_smallcnn(2, torch.nn.Dropout(0.5))
    assert not all(torch.equal(p, q) for p, q in zip(c, d))


def test_seed_dropout_sets_one_generator_and_counts_the_layers():
    from tenfold.core.seeds import SeededDropout, seed_dropout

    net = torch.nn.Sequential(SeededDropout(0.5), torch.nn.Linear(4, 4), SeededDropout(0.2))
    assert seed_dropout(net, 3) == 2 and net[0].gen is net[2].gen
    x = torch.ones(2, 4)
    out1 = net[0](x)
    seed_dropout(net, 3)
    assert torch.equal(out1, net[0](x))  # same seed, same mask
    assert torch.equal(net.eval()[0](x), x)  # eval: identity
