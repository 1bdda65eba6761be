"""Channels-last weights (`tenfold.core.runtime.channels_last`): what the studies' builders return, that outputs and
gradients match the default layout, and that a model saved in it loads anywhere."""

import copy
import io

import pytest
import torch
from torch import nn

from tenfold.core.runtime import channels_last


def _is_nhwc(t: torch.Tensor) -> bool:
    return t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous()


def _conv_weights(model: nn.Module) -> list[torch.Tensor]:
    """Weights whose two layouts differ (not 1x1 kernels nor depthwise convolutions, which are both at once)."""
    return [
        m.weight
        for m in model.modules()
        if isinstance(m, nn.Conv2d) and m.weight.shape[1] > 1 and m.weight.shape[-1] * m.weight.shape[-2] > 1
    ]


def test_conv_weights_become_channels_last_and_the_outputs_and_gradients_match_the_default_layout():
    torch.manual_seed(0)
    ref = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.GroupNorm(2, 8), nn.ReLU(), nn.Conv2d(8, 4, 3, stride=2))
    ref = nn.Sequential(*ref, nn.Flatten(), nn.Linear(4 * 15 * 15, 3))
    fast = copy.deepcopy(ref)
    assert channels_last(fast) is fast
    assert all(_is_nhwc(w) for w in _conv_weights(fast))
    assert not any(_is_nhwc(w) for w in _conv_weights(ref))
    assert fast[-1].weight.is_contiguous()  # 2-D weights untouched
    x = torch.rand(5, 3, 32, 32, requires_grad=True)
    out_ref, out_fast = ref(x), fast(x)
    torch.testing.assert_close(out_fast, out_ref, rtol=1e-5, atol=1e-5)
    g_ref = torch.autograd.grad(out_ref.square().sum(), [x, ref[0].weight])
    g_fast = torch.autograd.grad(out_fast.square().sum(), [x, fast[0].weight])
    for a, b in zip(g_fast, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_a_model_without_convolutions_is_left_as_it_is():
    mlp = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    before = {k: (v.stride(), v.data_ptr()) for k, v in mlp.state_dict().items()}
    channels_last(mlp)
    assert {k: (v.stride(), v.data_ptr()) for k, v in mlp.state_dict().items()} == before


def test_a_channels_last_state_dict_loads_into_a_default_layout_model_with_equal_outputs():
    torch.manual_seed(1)
    fast = channels_last(nn.Sequential(nn.Conv2d(3, 6, 3), nn.ReLU(), nn.Conv2d(6, 2, 3)))
    buf = io.BytesIO()
    torch.save(fast.state_dict(), buf)
    plain = nn.Sequential(nn.Conv2d(3, 6, 3), nn.ReLU(), nn.Conv2d(6, 2, 3))
    plain.load_state_dict(torch.load(io.BytesIO(buf.getvalue()), weights_only=True))
    x = torch.rand(2, 3, 12, 12)
    torch.testing.assert_close(plain(x), fast(x), rtol=1e-5, atol=1e-5)


def _security_victim():
    from tenfold.studies.security.benchmark import new_model
    from tenfold.studies.security.params import Victim

    class Data:
        shape, num_classes = (3, 32, 32), 10
        x_train = torch.rand(20, 3, 32, 32).numpy()

    return new_model(Data(), Victim(), 0)


def _face_model():
    from tenfold.components.models.facemodels import build, surrogate_spec

    return build("s", surrogate_spec()).net


def _release_net():
    from tenfold.components.perturb.models import build

    return build("cnn", 3, 10, 32)


@pytest.mark.parametrize("make", [_security_victim, _face_model, _release_net])
def test_the_studies_builders_return_channels_last_conv_nets(make):
    weights = _conv_weights(make())
    assert weights and all(_is_nhwc(w) for w in weights)


def test_a_strided_1x1_convolution_on_few_channels_keeps_the_default_layout_and_trains():
    """Channels-last backward of a strided 1x1 convolution on fewer than 8 input channels corrupted the heap on an
    AVX2 host (a width-4 ResNet's shortcut, `profiles/tiny.yaml`): such a model stays NCHW, and its training step
    runs; at 16 channels the same shortcut goes channels-last."""
    from tenfold.components.victims import ResNet

    torch.manual_seed(0)
    small = channels_last(ResNet(1, 10, width=4, blocks=(1,), first_stride=2))
    assert not any(_is_nhwc(w) for w in _conv_weights(small))
    opt = torch.optim.SGD(small.parameters(), lr=0.1)
    for _ in range(20):
        loss = nn.functional.cross_entropy(small(torch.randn(64, 1, 8, 8)), torch.randint(0, 10, (64,)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert torch.isfinite(loss)
    wide = channels_last(ResNet(1, 10, width=16, blocks=(1,), first_stride=2))
    assert all(_is_nhwc(w) for w in _conv_weights(wide))
