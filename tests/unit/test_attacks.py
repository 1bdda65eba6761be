"""Attacks on tiny data: budgets respected, labels as the taxonomy says, objectives actually decrease."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tenfold.components.attacks import ATTACKS
from tenfold.components.attacks.base import CraftContext, Poison, make_setup, project_linf, stamp
from tenfold.components.attacks.registry import register_attack
from tenfold.components.victims import ConvNet
from tenfold.studies.security.taxonomy import taxonomy_tables

torch.set_num_threads(1)  # tiny tensors: extra threads only add contention


def _ctx(seed=0, n_poison=6, eps=16 / 255, mix=None):
    rng = np.random.default_rng(seed)
    x = rng.random((60, 1, 12, 12)).astype(np.float32)
    y = np.repeat(np.arange(3), 20)
    xt = rng.random((9, 1, 12, 12)).astype(np.float32)
    yt = np.repeat(np.arange(3), 3)
    torch.manual_seed(seed)
    net = ConvNet(1, 3, 4, 12)
    setup = make_setup("targeted", yt, 3, seed)
    setup.source_class = (setup.adv_class + 1) % 3
    return CraftContext(x, y, xt, yt, 3, net, torch.device("cpu"), setup, n_poison, eps, 3, seed, mix)


class Cfg:
    iters = 8
    restarts = 2
    tau = 0.1
    augment = True
    lr = 0.01
    beta = 0.25
    steps = 4
    step = 0.25
    fraction = 0.1


def test_every_attack_is_in_the_generated_taxonomy_table():
    rows = taxonomy_tables()["attack_taxonomy"]["rows"]
    assert [r[0] for r in rows] == list(ATTACKS)
    assert {
        "badnets",
        "patch",
        "label_flip",
        "poison_frogs",
        "bullseye_polytope",
        "gradient_matching",
        "clean_label_backdoor",
        "hidden_trigger",
    } <= set(ATTACKS)


def test_register_rejects_values_outside_the_taxonomy():
    with pytest.raises(ValueError, match="goal"):
        register_attack(
            "x",
            goal="steal",
            label="clean-label",
            knowledge="white-box",
            mechanism="trigger patch",
            norm="linf",
            victim="from-scratch",
            paper="-",
        )


@pytest.mark.parametrize("name", ["gradient_matching", "poison_frogs", "bullseye_polytope", "hidden_trigger"])
def test_clean_label_perturbations_stay_in_budget(name):
    ctx = _ctx()
    p = ATTACKS[name].craft(ctx, Cfg)
    assert len(p.indices) == ctx.n_poison
    assert np.array_equal(p.y, ctx.y_train[p.indices])  # clean label
    assert np.abs(p.x - ctx.x_train[p.indices]).max() <= ctx.eps + 1e-6
    assert p.x.min() >= 0 and p.x.max() <= 1
    assert np.all(ctx.y_train[p.indices] == ctx.setup.adv_class)  # poisons of the adversarial class


def test_gradient_matching_lowers_its_loss_and_adaptive_runs():
    ctx = _ctx()
    p = ATTACKS["gradient_matching"].craft(ctx, Cfg)
    assert 0 <= p.info["matching_loss"] < 1.0  # cosine above zero after crafting
    assert p.info["matching_loss"] < p.info["start_loss"]  # lower than for the unperturbed bases
    from tenfold.components.defenses.augment import cutmix

    ctx2 = _ctx(mix=lambda x, y, g: cutmix(x, y, g, 3, 1.0, 1.0))
    p2 = ATTACKS["gradient_matching"].craft(ctx2, Cfg)
    assert p2.info["adaptive"] and not np.array_equal(p.x, p2.x)


def test_feature_collision_moves_features_towards_target():
    ctx = _ctx()
    net = ctx.surrogate
    p = ATTACKS["poison_frogs"].craft(ctx, Cfg)
    with torch.no_grad():
        ft = net.features(torch.as_tensor(ctx.x_test[ctx.setup.target_index : ctx.setup.target_index + 1]))
        base = net.features(torch.as_tensor(ctx.x_train[p.indices]))
    with torch.no_grad():
        after = net.features(torch.as_tensor(p.x))
    assert ((after - ft) ** 2).sum(1).mean() < ((base - ft) ** 2).sum(1).mean()


def test_badnets_relabels_and_stamps():
    ctx = _ctx()
    p = ATTACKS["badnets"].craft(ctx, Cfg)
    assert np.all(p.y == ctx.setup.adv_class) and np.all(ctx.y_train[p.indices] != ctx.setup.adv_class)
    assert np.array_equal(p.x[:, :, -3:, -3:], np.broadcast_to(p.trigger, p.x[:, :, -3:, -3:].shape))  # flush corner
    assert np.array_equal(p.x[:, :, :-3, :], ctx.x_train[p.indices][:, :, :-3, :])
    assert p.setup.source_class == -1 and p.setup.adv_class == ctx.setup.adv_class  # trigger for every class


class PatchCfg:
    fraction = None
    size = 4


def test_lab_patch_is_clean_label_on_the_adversarial_class_with_a_source_class():
    """The lab's `--recipe patch`: budget-many images of the adversarial class, labels kept, a Bernoulli patch of
    `size` pixels replacing the bottom-right corner; the trigger is for the setup's source class."""
    ctx = _ctx()
    p = ATTACKS["patch"].craft(ctx, PatchCfg)
    assert len(p.indices) == ctx.n_poison and np.all(ctx.y_train[p.indices] == ctx.setup.adv_class)
    assert np.array_equal(p.y, ctx.y_train[p.indices]) and p.trigger.shape == (1, 4, 4)
    assert set(np.unique(p.trigger)) <= {0.0, 1.0}
    assert np.array_equal(p.x[:, :, -4:, -4:], np.broadcast_to(p.trigger, (ctx.n_poison, 1, 4, 4)))
    assert np.array_equal(p.x[:, :, :-4, :], ctx.x_train[p.indices][:, :, :-4, :])
    assert p.setup.source_class == ctx.setup.source_class >= 0
    PatchCfg.fraction, PatchCfg.size = 0.1, None
    try:
        q = ATTACKS["patch"].craft(ctx, PatchCfg)
    finally:
        PatchCfg.fraction, PatchCfg.size = None, 4
    assert len(q.indices) == 6 and q.trigger.shape == (1, ctx.patch_size, ctx.patch_size)


def test_clean_label_backdoor_keeps_labels_and_carries_trigger():
    ctx = _ctx()
    p = ATTACKS["clean_label_backdoor"].craft(ctx, Cfg)
    assert np.array_equal(p.y, ctx.y_train[p.indices])
    assert np.allclose(p.x[:, :, -3:, -3:], p.trigger)
    body = np.abs(p.x - ctx.x_train[p.indices])[:, :, :-3, :]
    assert body.max() <= ctx.eps + 1e-6 and body.max() > 0


def test_label_flip_changes_every_chosen_label():
    ctx = _ctx()
    p = ATTACKS["label_flip"].craft(ctx, Cfg)
    assert len(p.indices) == 6 and np.all(p.y != ctx.y_train[p.indices])


def test_poison_roundtrip(tmp_path):
    ctx = _ctx()
    p = ATTACKS["badnets"].craft(ctx, Cfg)
    q = Poison.load(p.save(tmp_path / "p.npz"))
    assert q.attack == "badnets" and q.setup == p.setup
    assert np.array_equal(q.x, p.x) and np.array_equal(q.trigger, p.trigger)
    xp, yp = q.apply(ctx.x_train, ctx.y_train)
    assert np.array_equal(yp[q.indices], q.y) and not np.array_equal(xp, ctx.x_train)
    with pytest.raises(FileNotFoundError, match="craft_poisons"):
        Poison.load(tmp_path / "missing.npz")


def test_setup_is_fixed_by_seed():
    y = np.repeat(np.arange(10), 5)
    assert make_setup("targeted", y, 10, 3) == make_setup("targeted", y, 10, 3)
    s = make_setup("targeted", y, 10, 3)
    assert s.adv_class != s.target_true == y[s.target_index]
    b = make_setup("backdoor", y, 10, 3)
    assert b.source_class != b.adv_class


@settings(max_examples=30, deadline=None)
@given(st.floats(0.001, 0.5), st.integers(0, 1000))
def test_projection_is_inside_ball_and_box(eps, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(3, 1, 4, 4, generator=g)
    adv = x + torch.randn(3, 1, 4, 4, generator=g)
    p = project_linf(adv, x, eps)
    assert (p - x).abs().max() <= eps + 1e-6 and p.min() >= 0 and p.max() <= 1


def test_stamp_does_not_modify_input():
    x = np.zeros((2, 1, 8, 8), np.float32)
    out = stamp(x, np.ones((1, 2, 2), np.float32))
    assert x.sum() == 0 and out.sum() == 8


@pytest.mark.parametrize(
    "name, cfg",
    [
        ("gradient_matching", {"iters": 5, "restarts": 2, "tau": 0.1, "augment": False}),
        ("poison_frogs", {"iters": 4, "lr": 0.01, "beta": 0.25}),
        ("bullseye_polytope", {"iters": 3, "lr": 0.01}),
        ("hidden_trigger", {"iters": 3, "lr": 0.01}),
        ("clean_label_backdoor", {"steps": 4, "step": 0.25}),
        ("label_flip", {"fraction": 0.1}),
    ],
)
def test_crafting_reports_every_iteration_and_the_count_is_known_up_front(name, cfg):
    from types import SimpleNamespace

    from tenfold.components.attacks.base import craft_steps

    cfg = SimpleNamespace(**cfg)
    ticks = []
    ctx = _ctx()
    ctx.step = ticks.append
    with_bar = ATTACKS[name].craft(ctx, cfg)
    assert len(ticks) == craft_steps(cfg) and set(ticks) <= {1}
    silent = ATTACKS[name].craft(_ctx(), cfg)  # the callback observes only: same poison without it
    assert np.array_equal(with_bar.x, silent.x) and np.array_equal(with_bar.indices, silent.indices)
