"""The benchmark's victims: the GroupNorm ResNet, its input normalisation, the recipe's warm-up and augmentation,
and the Wilson interval of success rates (tiny tensors)."""

from functools import partial

import numpy as np
import pytest
import torch

from tenfold.components.attacks.metrics import wilson
from tenfold.components.victims import ConvNet, ResNet, TrainConfig, augment_batch, input_std, lr_at, lr_step, train

torch.set_num_threads(1)


def test_resnet_shapes_normalisation_and_groupnorm():
    net = ResNet(3, 10, width=4, blocks=(1, 1, 1), mean=[0.5, 0.4, 0.3], std=[0.2, 0.25, 0.5])
    x = torch.rand(2, 3, 16, 16)
    assert net(x).shape == (2, 10) and net.features(x).shape == (2, 16)  # 4 * 2**2 features
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())  # opacus needs no BatchNorm
    assert any(isinstance(m, torch.nn.GroupNorm) for m in net.modules())
    assert input_std(net) == pytest.approx((0.2, 0.25, 0.5)) and input_std(ConvNet(1, 3, 4, 8)) is None
    assert "body.0.mean" in net.state_dict()  # saved with the weights
    deeper = ResNet(3, 10, width=4, blocks=(2, 2, 2, 2))
    assert deeper(x).shape == (2, 10) and deeper.features(x).shape == (2, 32)


def test_warmup_rises_linearly_then_step_decay():
    cfg = TrainConfig(8, 10, 0.1, 0.0, warmup_epochs=1)
    assert lr_step(cfg, 0, 0, 4) == pytest.approx(0.025) and lr_step(cfg, 0, 3, 4) == pytest.approx(0.1)
    assert lr_step(cfg, 2, 0, 4) == pytest.approx(0.1) and lr_step(cfg, 3, 0, 4) == pytest.approx(0.01)
    assert lr_at(cfg, 7) == pytest.approx(1e-4)
    assert lr_step(TrainConfig(8, 10, 0.1, 0.0), 0, 0, 4) == lr_at(cfg, 0)  # no warm-up: the old schedule


def test_cosine_schedule_per_epoch_and_unknown_schedule():
    cfg = TrainConfig(10, 10, 0.1, 0.0, warmup_epochs=1, schedule="cosine")
    rates = [lr_at(cfg, e) for e in range(10)]
    assert rates[0] == pytest.approx(0.1) and rates[5] == pytest.approx(0.05)
    assert rates[9] == pytest.approx(0.05 * (1 + np.cos(0.9 * np.pi)))
    assert all(a > b > 0 for a, b in zip(rates, rates[1:]))  # falls every epoch, never reaches 0 inside training
    step = TrainConfig(10, 10, 0.1, 0.0, warmup_epochs=1)
    assert sum(map(partial(lr_at, cfg), range(10))) > 1.5 * sum(map(partial(lr_at, step), range(10)))  # 0.55 vs 0.33
    assert lr_step(cfg, 0, 0, 4) == pytest.approx(0.025)  # the warm-up multiplies either schedule
    with pytest.raises(ValueError, match="unknown victim schedule 'linear'"):
        lr_at(TrainConfig(10, 10, 0.1, 0.0, schedule="linear"), 3)


def test_augment_batch_crops_and_flips_per_image():
    x = torch.arange(2 * 1 * 6 * 6, dtype=torch.float32).view(2, 1, 6, 6) + 1
    out = augment_batch(x, torch.Generator().manual_seed(0), pad=2, flip=True)
    assert out.shape == x.shape and not torch.equal(out, x)
    for i in range(2):  # every output is a shifted (and maybe flipped) window of the input
        padded = torch.nn.functional.pad(x[i], (2, 2, 2, 2))
        windows = [padded[:, dy : dy + 6, dx : dx + 6] for dy in range(5) for dx in range(5)]
        assert any(torch.equal(out[i], w) or torch.equal(out[i], w.flip(-1)) for w in windows)
    same = augment_batch(x, torch.Generator().manual_seed(0), pad=2, flip=True)
    assert torch.equal(out, same)  # drawn from the generator only
    assert torch.equal(augment_batch(x, torch.Generator(), pad=0, flip=False), x)


def test_resnet_trains_with_the_recipe_and_is_deterministic():
    rng = np.random.default_rng(0)
    x = (rng.random((64, 3, 8, 8)) * 0.3).astype(np.float32)
    y = np.tile(np.arange(2), 32)
    x[y == 1, :, ::2, ::2] += 0.7  # a texture (GroupNorm removes a global brightness, pooling the position)
    cfg = TrainConfig(16, 16, 0.1, 5e-4, augment=True, crop_pad=1, warmup_epochs=1)

    def run():
        torch.manual_seed(0)
        return train(ResNet(3, 2, width=4, blocks=(1,), mean=[0.3] * 3, std=[0.3] * 3), x, y, cfg, "cpu", 1)

    a, b = run(), run()
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    with torch.no_grad():
        assert (a(torch.as_tensor(x)).argmax(1).numpy() == y).mean() > 0.9


def test_wilson_interval():
    lo, hi = wilson(3, 8)
    assert lo < 3 / 8 < hi and lo == pytest.approx(0.137, abs=1e-3) and hi == pytest.approx(0.694, abs=1e-3)
    assert wilson(0, 10)[0] == 0.0 and wilson(10, 10)[1] == 1.0 and wilson(0, 0) is None
