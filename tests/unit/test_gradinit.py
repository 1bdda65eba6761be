import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from tenfold.core.seeds import seeded
from tenfold.registry import ParamsError, validate_section
from tenfold.studies.gradinit.algorithm import (
    RescaleAdam,
    batch_stream,
    gradinit,
    sample_stream,
    scale_bounds,
    scale_summary,
)
from tenfold.studies.gradinit.models import VGG, PostLNTransformer, ResNet
from tenfold.studies.gradinit.params import GradInitConfig, SeqTask, SeqTrain
from tenfold.studies.gradinit.seqtask import make_batch, token_loss
from tenfold.studies.gradinit.train import train_seq


def tiny_vgg():
    return seeded(0, lambda: VGG(11, 0.0625, 1, 10, 8))


def data(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 8, 8, generator=g)
    return x, (x.mean((1, 2, 3)) * 40).long().clamp(0, 9)


def test_models_shapes_and_no_batch_norm():
    x = torch.zeros(2, 1, 28, 28)
    for m in (VGG(11, 0.125, 1, 10, 28), ResNet(2, 4, 1, 10)):
        assert m(x).shape == (2, 10)
        assert not any(isinstance(mod, torch.nn.BatchNorm2d) for mod in m.modules())
    assert ResNet(18).depth == 110
    t = PostLNTransformer(7, 5, d_model=16, heads=2, layers=2, ffn=32)
    assert t(torch.zeros(3, 5, dtype=torch.long)).shape == (3, 5, 7)


def test_seq_tasks():
    g = torch.Generator().manual_seed(0)
    x, y = make_batch("sort", 4, 6, 9, g)
    assert torch.equal(y, x.sort(1).values)
    x, y = make_batch("reverse", 4, 6, 9, g)
    assert torch.equal(y, x.flip(1))
    with pytest.raises(ValueError, match="unknown sequence task"):
        make_batch("shuffle", 1, 2, 3, g)


def test_scale_bounds_kinds():
    t = PostLNTransformer(5, 4, d_model=8, heads=2, layers=1, ffn=8)
    lo, hi = scale_bounds(t, 0.01, 100.0)
    assert lo["layers.0.qkv.weight"] == 0.01 and lo["layers.0.qkv.bias"] == 0.0
    assert hi["layers.0.ln1.weight"] == 100.0 and hi["layers.0.qkv.weight"] is None


def test_rescale_adam_clips_and_projects():
    s = {"w": torch.tensor(0.02)}
    opt = RescaleAdam(s, lr=0.5, grad_clip=1.0, lower={"w": 0.01}, upper={"w": None})
    opt.step({"w": torch.tensor(1e6)}, "objective")  # clipped to 1, adam step ~lr, projected to the floor
    assert s["w"].item() == pytest.approx(0.01)
    opt.step({"w": torch.tensor(-1.0)}, "constraint")  # separate first moment (bias-corrected from step 1)
    v_hat = (0.999 * 0.001 + 0.001) / (1 - 0.999)  # the second moment is shared by both kinds of step
    assert s["w"].item() == pytest.approx(0.01 + 0.5 / math.sqrt(v_hat), rel=1e-4)


def test_gradinit_keeps_parameters_and_rescales_them():
    m = tiny_vgg()
    before = {k: p.detach().clone() for k, p in m.named_parameters()}
    ids = {k: id(p) for k, p in m.named_parameters()}
    x, y = data()
    cfg = GradInitConfig(iters=5, batch_size=16, lr=0.05)
    res = gradinit(m, batch_stream(x, y, 16, 0), F.cross_entropy, cfg)
    assert {k: id(p) for k, p in m.named_parameters()} == ids  # same Parameter objects, nothing deleted
    for k, p in m.named_parameters():
        if before[k].abs().sum() > 0:  # p = alpha * p0: the direction is kept
            torch.testing.assert_close(p.detach(), before[k] * res.scales[k])
        assert res.scales[k] >= (0.0 if k.endswith("bias") else cfg.min_scale)
    assert len(res.history) == 5
    assert any(abs(v - 1) > 1e-3 for v in res.scales.values())


def test_constraint_step_lowers_gradient_norm():
    """With gamma tiny every step is a constraint step, and they shrink ||g||."""
    m = tiny_vgg()
    x, y = data()
    cfg = GradInitConfig(iters=15, batch_size=32, lr=0.05, gamma=1e-9)
    res = gradinit(m, batch_stream(x, y, 32, 0), F.cross_entropy, cfg)
    assert res.constraint_share == 1.0
    assert res.history[-1]["grad_norm"] < res.history[0]["grad_norm"]


def test_objective_step_matches_finite_difference():
    """The scale gradient of L(S~; alpha * p0 - eta d) agrees with a central finite difference, the step direction
    d = g/||g|| (at alpha) held constant as in the official code (`grad.detach()`)."""
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2)).double()
    x, y = torch.randn(8, 4, dtype=torch.float64), torch.randint(0, 2, (8,))
    from torch.func import functional_call

    base = {k: p.detach().clone() for k, p in m.named_parameters()}

    def objective(a):  # a: dict of scalar scales
        theta = {k: a[k] * base[k] for k in base}
        loss = F.cross_entropy(functional_call(m, theta, (x,)), y)
        g = torch.autograd.grad(loss, list(theta.values()), create_graph=True)
        n = torch.sqrt(sum((gi * gi).sum() for gi in g))
        d = direction if direction is not None else {k: (gi / n).detach() for k, gi in zip(theta, g)}
        theta2 = {k: theta[k] - 0.1 * d[k] for k in theta}
        return F.cross_entropy(functional_call(m, theta2, (x,)), y), d

    direction = None
    a = {k: torch.tensor(1.0, dtype=torch.float64, requires_grad=True) for k in base}
    value, direction = objective(a)  # the direction at alpha = 1, then held fixed
    grads = torch.autograd.grad(value, list(a.values()))
    k0 = "0.weight"
    eps = 1e-5
    plus = {k: torch.tensor(1.0 + (eps if k == k0 else 0), dtype=torch.float64, requires_grad=True) for k in base}
    minus = {k: torch.tensor(1.0 - (eps if k == k0 else 0), dtype=torch.float64, requires_grad=True) for k in base}
    fd = (objective(plus)[0] - objective(minus)[0]).item() / (2 * eps)
    assert grads[list(base).index(k0)].item() == pytest.approx(fd, rel=1e-4, abs=1e-8)
    # and gradinit's objective step uses exactly this gradient: one objective step of RescaleAdam from alpha = 1
    # moves each scale by -lr * sign(clipped gradient) (Adam's first step)
    cfg = GradInitConfig(
        iters=1, lr=1e-3, eta=0.1, gamma=1e9, batch_size=8, grad_clip=1e9, min_scale=0.0, overlap=False
    )  # S~ = the next batch = the same x here
    m2 = copy.deepcopy(m)
    res = gradinit(m2, iter([(x, y), (x, y)]), F.cross_entropy, cfg)
    for k, gk in zip(base, grads):
        if base[k].abs().sum() > 0 and abs(gk.item()) > 1e-6:
            assert res.scales[k] == pytest.approx(1.0 - 1e-3 * float(np.sign(gk.item())), abs=1e-6)


def test_adam_variant_on_transformer_respects_layernorm_cap():
    t = seeded(0, lambda: PostLNTransformer(6, 5, d_model=16, heads=2, layers=2, ffn=16, dropout=0.1))
    cfg = GradInitConfig(alg="adam", iters=4, batch_size=8, lr=50.0, eta=1e-3, gamma=1e9, max_scale=1.5, grad_clip=1e8)
    res = gradinit(t, sample_stream(lambda g: make_batch("copy", 8, 5, 6, g), 0), token_loss, cfg)
    assert all(v <= 1.5 + 1e-6 for k, v in res.scales.items() if ".ln" in k and k.endswith("weight"))
    assert t.training  # mode restored


def test_train_seq_reports_failure_on_nan():
    t = seeded(0, lambda: PostLNTransformer(4, 4, d_model=8, heads=2, layers=1, ffn=8, dropout=0.0))
    with torch.no_grad():
        t.head.weight.fill_(float("nan"))
    out = train_seq(
        t, SeqTask(task="copy", vocab=4, length=4, n_test=16), SeqTrain(steps=3, batch_size=4), 1e-3, "cpu", 0
    )
    assert not out["trains"] and out["final_test_acc"] == 0.0


@settings(max_examples=20, deadline=None)
@given(n=st.integers(4, 40), bs=st.integers(2, 4), seed=st.integers(0, 100))
def test_batch_stream_is_seeded_and_covers_each_pass(n, bs, seed):
    x = torch.arange(n).float()[:, None]
    y = torch.arange(n)
    a = [b[1] for _, b in zip(range(n // bs), batch_stream(x, y, bs, seed))]
    b = [b[1] for _, b in zip(range(n // bs), batch_stream(x, y, bs, seed))]
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    seen = torch.cat(a)
    assert len(set(seen.tolist())) == len(seen) == (n // bs) * bs  # one pass: no repeats


def test_params_reject_unknown_and_bad_values():
    with pytest.raises(ParamsError, match="gradinit.images.vgg_init.gamma"):
        validate_section("gradinit", {"images": {"vgg_init": {"gamma": -1}}})
    with pytest.raises(ParamsError, match="unknown key"):
        validate_section("gradinit", {"transformer": {"model": {"layerz": 2}}})
    with pytest.raises(ParamsError, match="divisible"):
        validate_section("gradinit", {"transformer": {"model": {"d_model": 10, "heads": 3}}})
    assert math.isclose(validate_section("gradinit", {}).transformer.init.eta, 0.02)  # the CPU default


def test_resnet_init_follows_the_official_no_bn_code():
    """Regression: the final layer once got Kaiming-normal weights (logit std ~11, initial loss ~18)."""
    m = seeded(0, lambda: ResNet(3, 8, 1, 10))
    bound = 1 / math.sqrt(m.fc.in_features)  # nn.Linear's default: uniform(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert m.fc.weight.abs().max().item() <= bound and m.fc.weight.std().item() < 0.8 * bound
    assert torch.count_nonzero(m.fc.bias) == 0
    conv = m.layers[3].conv1  # 8 -> 16 channels: fan_out = 16 * 9 differs from fan_in = 8 * 9
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / (16 * 9)), rel=0.15)
    x = torch.randn(32, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert m(x).std().item() < 8.0


def test_standardize_uses_training_statistics_per_channel():
    from tenfold.studies.gradinit.train import standardize

    rng = np.random.default_rng(0)
    xtr = (rng.random((50, 2, 4, 4)) * [[[[1.0]], [[5.0]]]] + 3).astype(np.float32)
    xte = xtr[:10] + 1
    a, b = standardize(xtr, xte)
    assert a.dtype == np.float32 and a.shape == xtr.shape
    np.testing.assert_allclose(a.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(a.std(axis=(0, 2, 3)), 1, atol=1e-4)
    np.testing.assert_allclose(b, a[:10] + 1 / xtr.std(axis=(0, 2, 3), keepdims=True), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="constant"):
        standardize(np.zeros((4, 1, 2, 2), np.float32), np.zeros((1, 1, 2, 2), np.float32))


def test_resnet_biases_train_at_a_tenth_of_the_lr():
    from tenfold.studies.gradinit.params import ImageTrain
    from tenfold.studies.gradinit.train import param_groups, train_images

    model = seeded(0, lambda: ResNet(1, 4, 1, 10))
    groups = param_groups(model, 0.05, 0.1)
    assert [g["lr"] for g in groups] == [0.05, pytest.approx(0.005)]
    names = {id(p): n for n, p in model.named_parameters()}
    assert all(names[id(p)].endswith("bias") for p in groups[1]["params"])
    assert not any(names[id(p)].endswith("bias") for p in groups[0]["params"])
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    assert len(param_groups(model, 0.05, 1.0)) == 1
    # training moves the biases less when their lr is a tenth (same data, same seed, plain SGD)
    x, y = data(32)
    cfg = ImageTrain(epochs=1, batch_size=8, lr=0.05, momentum=0.0, weight_decay=0.0, clip=None)
    moved = {}
    for f in (1.0, 0.1):
        m = seeded(0, lambda: ResNet(1, 4, 1, 10))
        b0 = m.fc.bias.detach().clone()
        train_images(m, x, y, x, y, cfg, seed=0, bias_lr_factor=f)
        moved[f] = float((m.fc.bias.detach() - b0).norm())
    assert 0 < moved[0.1] < 0.5 * moved[1.0]


def test_divergence_criterion():
    from tenfold.studies.gradinit.train import diverged

    assert diverged([2.3, 2.2, float("nan")], 2)
    assert diverged([2.3, 2.31, 2.32, 2.30], 2)  # ends no better than its first step
    assert not diverged([2.3, 1.5, 0.9, 0.5], 2)
    assert not diverged([], 5)
    # stuck at the uniform prediction's loss ln(10) after starting above it: diverged; a real decrease is not
    assert diverged([2.45, 2.31, 2.305, 2.304], 2, reference=math.log(10))
    assert not diverged([2.45, 2.31, 2.15, 2.14], 2, reference=math.log(10))
    assert not diverged([2.45, 2.31, 2.305, 2.304], 2)  # without the reference only the first loss counts
    t = seeded(0, lambda: PostLNTransformer(4, 4, 16, 2, 2, 16, 0.0))
    out = train_seq(
        t,
        SeqTask(task="copy", vocab=4, length=4, n_test=16),
        SeqTrain(steps=60, batch_size=16, diverge_window=10),
        3e-3,
        "cpu",
        seed=0,
        eval_every=30,
    )
    assert not out["diverged"] and out["final_train_loss"] < out["initial_loss"]


def test_transformer_scale_summary_groups_every_tensor_once():
    t = seeded(0, lambda: PostLNTransformer(5, 4, 16, 2, 2, 16, 0.0))
    scales = {k: 1.0 + 0.01 * i for i, (k, _) in enumerate(t.named_parameters())}
    out = scale_summary(scales)
    assert set(out) == {"embedding", "layernorm", "bias", "weight"}
    assert sum(v["n"] for v in out.values()) == len(scales)
    assert out["embedding"]["n"] == 2 and out["layernorm"]["n"] == 4  # tok, pos; ln1/ln2 weights of 2 layers
    assert out["weight"]["min"] >= 1.0 and out["weight"]["max"] == max(
        v for k, v in scales.items() if k.endswith("weight") and ".ln" not in k and not k.startswith(("tok", "pos"))
    )


def test_seq_training_is_deterministic_despite_other_use_of_the_global_rng():
    """Dropout draws from the model's own generator: consuming torch's global RNG in between (as concurrent tasks
    do) does not change the run; a different seed does."""

    def run(seed, disturb):
        t = seeded(0, lambda: PostLNTransformer(5, 4, 16, 2, 2, 16, 0.3))
        torch.manual_seed(disturb)
        torch.rand(disturb + 1)
        out = train_seq(
            t,
            SeqTask(task="copy", vocab=5, length=4, n_test=16),
            SeqTrain(steps=6, batch_size=8),
            3e-3,
            "cpu",
            seed,
            eval_every=3,
        )
        return [c["train_loss"] for c in out["curve"]]

    assert run(0, 1) == run(0, 7)
    assert run(0, 1) != run(1, 1)
    layer = seeded(0, lambda: PostLNTransformer(5, 4, 16, 2, 1, 16, 0.5)).layers[0].drop
    x = torch.ones(1000)
    assert torch.equal(layer.eval()(x), x)
    y = layer.train()(x)
    assert set(y.unique().tolist()) <= {0.0, 2.0} and 300 < int((y == 0).sum()) < 700


def test_cosine_schedule_over_the_paper_horizon_keeps_epoch_one_near_the_full_lr():
    from tenfold.studies.gradinit.params import ImageTrain
    from tenfold.studies.gradinit.train import cosine_factor, train_images

    short, long = ImageTrain(epochs=1, cosine_epochs=None), ImageTrain(epochs=1, cosine_epochs=200)
    assert cosine_factor(0, 10, short) == 1.0 and cosine_factor(5, 10, short) == pytest.approx(0.5)
    assert cosine_factor(10, 10, short) == pytest.approx(0.0, abs=1e-12)
    assert cosine_factor(10, 10, long) == pytest.approx(0.5 * (1 + np.cos(np.pi / 200)))  # > 0.9999
    assert cosine_factor(1000, 10, long) == pytest.approx(0.5) and cosine_factor(2000, 10, long) == pytest.approx(
        0.0, abs=1e-12
    )
    # the same first epoch moves the weights further when the schedule does not decay within it (plain SGD)
    x, y = data(32)
    moved = {}
    for name, cfg in (("short", short), ("long", long)):
        m = seeded(0, lambda: VGG(11, 0.0625, 1, 10, 8))
        w0 = [p.detach().clone() for p in m.parameters()]
        train_images(
            m,
            x,
            y,
            x,
            y,
            cfg.model_copy(update={"batch_size": 8, "momentum": 0.0, "weight_decay": 0.0, "clip": None}),
            seed=0,
        )
        moved[name] = sum(float((p.detach() - a).norm()) for p, a in zip(m.parameters(), w0))
    assert moved["long"] > moved["short"] > 0
