"""Face recognizers behind one interface: an aligned crop in [0, 1] -> an L2-normalised embedding.

Every recognizer says what it needs: its input size (height, width), the 5-point alignment template in crop
pixels (eyes, nose tip, mouth corners) and its input normalisation. The pipeline warps each photo onto each
model's own template, so the same detection serves models of different input sizes.

- `ms1m`: MobileFaceNet trained on MS1M-ArcFace (the layer layout of foamliu/MobileFaceNet: ReLU6 inverted
  residuals, a global depthwise conv, a 1x1 conv to 128-d and a BatchNorm), 112x112, ImageNet mean/std.
- `casia`: MobileFaceNet trained on CASIA-WebFace (the layout of Xiaoccer/MobileFaceNet_Pytorch: PReLU
  bottlenecks, a 7x6 global depthwise conv), 112x96 (the template shifted 8 px), (255 x - 127.5) / 128.
- surrogates trained or fine-tuned here (`train.py`): the `ms1m` architecture with their own weights.
- `dlib`: dlib's ResNet descriptor (`dlibrec.py`), a black box: no gradients, its own detector and alignment.

Pretrained weights are read only after their SHA-256 matched the data-source table
(`tenfold.components.data.sources.locate`), with `torch.load(weights_only=True)`, and must match the module's
state-dict keys and shapes exactly (`load_state_dict(strict=True)`); anything else raises `WeightsError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from tenfold.core.errors import TenfoldError
from tenfold.core.runtime import channels_last
from tenfold.core.seeds import isolated

# ArcFace / insightface reference landmarks for a 112x112 crop (eyes, nose, mouth corners), (x, y) pixels.
TEMPLATE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]], np.float64
)
TEMPLATE_112x96 = TEMPLATE_112 - np.array([8.0, 0.0])  # the 96-wide crop of SphereFace / CASIA MobileFaceNet
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
HALF_MEAN, HALF_STD = (127.5 / 255,) * 3, (128.0 / 255,) * 3  # (255 x - 127.5) / 128 on x in [0, 1]

# the MobileFaceNet bottleneck setting of both releases: (expansion t, channels c, repeats n, first stride s)
BOTTLENECKS = ((2, 64, 5, 2), (4, 128, 1, 2), (2, 128, 6, 1), (4, 128, 1, 2), (2, 128, 2, 1))


class WeightsError(TenfoldError):
    """A weights file that cannot be used: wrong checksum, unreadable, or keys/shapes that do not match."""


# ------------------------------------------------------------------ MobileFaceNet, MS1M layout (foamliu)
class _ConvBNReLU6(nn.Sequential):
    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1):
        super().__init__(
            nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False), nn.BatchNorm2d(cout), nn.ReLU6()
        )


class _DepthwiseSeparable(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.depthwise = nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False)
        self.pointwise = nn.Conv2d(c, c, 1, bias=False)
        self.bn1, self.bn2 = nn.BatchNorm2d(c), nn.BatchNorm2d(c)

    def forward(self, x):
        return F.relu(self.bn2(self.pointwise(F.relu(self.bn1(self.depthwise(x))))))


class _InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, t: int):
        super().__init__()
        hidden = cin * t
        self.residual = stride == 1 and cin == cout
        self.conv = nn.Sequential(
            _ConvBNReLU6(cin, hidden, 1),
            _ConvBNReLU6(hidden, hidden, 3, stride, hidden),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        )

    def forward(self, x):
        return x + self.conv(x) if self.residual else self.conv(x)


class _GDConv(nn.Module):
    def __init__(self, c: int, kernel):
        super().__init__()
        self.depthwise = nn.Conv2d(c, c, kernel, groups=c, bias=False)
        self.bn = nn.BatchNorm2d(c)

    def forward(self, x):
        return self.bn(self.depthwise(x))


class MobileFaceNetMS1M(nn.Module):
    """MobileFaceNet as laid out in foamliu/MobileFaceNet (input normalised, 112x112 -> 128-d, unnormalised)."""

    def __init__(self, dim: int = 128):
        super().__init__()
        self.conv1 = _ConvBNReLU6(3, 64, 3, 2)
        self.dw_conv = _DepthwiseSeparable(64)
        blocks, cin = [], 64
        for t, c, n, s in BOTTLENECKS:
            for i in range(n):
                blocks.append(_InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        self.features = nn.Sequential(*blocks)
        self.conv2 = _ConvBNReLU6(cin, 512, 1)
        self.gdconv = _GDConv(512, 7)
        self.conv3 = nn.Conv2d(512, dim, 1)
        self.bn = nn.BatchNorm2d(dim)

    def forward(self, x):
        x = self.gdconv(self.conv2(self.features(self.dw_conv(self.conv1(x)))))
        return self.bn(self.conv3(x)).flatten(1)


# ------------------------------------------------------------------ MobileFaceNet, CASIA layout (Xiaoccer)
class _ConvBlock(nn.Module):
    def __init__(self, cin: int, cout: int, k, stride: int = 1, pad: int = 0, dw: bool = False, linear=False):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, pad, groups=cin if dw else 1, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.prelu = None if linear else nn.PReLU(cout)

    def forward(self, x):
        x = self.bn(self.conv(x))
        return x if self.prelu is None else self.prelu(x)


class _Bottleneck(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, t: int):
        super().__init__()
        h = cin * t
        self.residual = stride == 1 and cin == cout
        self.conv = nn.Sequential(
            nn.Conv2d(cin, h, 1, bias=False),
            nn.BatchNorm2d(h),
            nn.PReLU(h),
            nn.Conv2d(h, h, 3, stride, 1, groups=h, bias=False),
            nn.BatchNorm2d(h),
            nn.PReLU(h),
            nn.Conv2d(h, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        )

    def forward(self, x):
        return x + self.conv(x) if self.residual else self.conv(x)


class MobileFaceNetCASIA(nn.Module):
    """MobileFaceNet as laid out in Xiaoccer/MobileFaceNet_Pytorch (112x96 -> 128-d, unnormalised)."""

    def __init__(self, dim: int = 128):
        super().__init__()
        self.conv1 = _ConvBlock(3, 64, 3, 2, 1)
        self.dw_conv1 = _ConvBlock(64, 64, 3, 1, 1, dw=True)
        blocks, cin = [], 64
        for t, c, n, s in BOTTLENECKS:
            for i in range(n):
                blocks.append(_Bottleneck(cin, c, s if i == 0 else 1, t))
                cin = c
        self.blocks = nn.Sequential(*blocks)
        self.conv2 = _ConvBlock(cin, 512, 1)
        self.linear7 = _ConvBlock(512, 512, (7, 6), dw=True, linear=True)
        self.linear1 = _ConvBlock(512, dim, 1, linear=True)

    def forward(self, x):
        x = self.conv2(self.blocks(self.dw_conv1(self.conv1(x))))
        return self.linear1(self.linear7(x)).flatten(1)


ARCHITECTURES = {"mobilefacenet_ms1m": MobileFaceNetMS1M, "mobilefacenet_casia": MobileFaceNetCASIA}


# ------------------------------------------------------------------ the common interface
class FaceModel(nn.Module):
    """A recognizer network behind the common interface: `forward(crops)` with crops (B, 3, H, W) in [0, 1],
    aligned to `template` at `size`, returns L2-normalised embeddings (B, D). Differentiable."""

    def __init__(
        self,
        name: str,
        net: nn.Module,
        size: tuple[int, int],
        template: np.ndarray,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        role: str = "surrogate",
        source: str = "",
    ):
        super().__init__()
        self.name, self.net, self.size, self.role, self.source = name, net, tuple(size), role, source
        self.template = np.asarray(template, np.float64)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

    @property
    def normalisation(self) -> str:
        return (
            f"(x - {tuple(round(v, 4) for v in self.mean.flatten().tolist())}) / "
            f"{tuple(round(v, 4) for v in self.std.flatten().tolist())} on x in [0, 1]"
        )

    def unnormalised(self, crops: torch.Tensor) -> torch.Tensor:
        """The raw network output (what a margin head trains on)."""
        return self.net((crops - self.mean) / self.std)

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.unnormalised(crops), dim=1)


@dataclass(frozen=True)
class Spec:
    """How to build one registered recognizer."""

    arch: str  # key of ARCHITECTURES
    size: tuple[int, int]
    template: np.ndarray = field(repr=False)
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str = ""  # data-source name of its pretrained weights (`sources.SOURCES`), "" = trained here
    what: str = ""


PRETRAINED: dict[str, Spec] = {
    "ms1m": Spec(
        "mobilefacenet_ms1m",
        (112, 112),
        TEMPLATE_112,
        IMAGENET_MEAN,
        IMAGENET_STD,
        "mobilefacenet_ms1m",
        "MobileFaceNet, MS1M-ArcFace (foamliu)",
    ),
    "casia": Spec(
        "mobilefacenet_casia",
        (112, 96),
        TEMPLATE_112x96,
        HALF_MEAN,
        HALF_STD,
        "mobilefacenet_casia",
        "MobileFaceNet, CASIA-WebFace (Xiaoccer)",
    ),
}


def build(name: str, spec: Spec, role: str = "surrogate") -> FaceModel:
    """A recognizer of `spec`'s architecture with freshly initialised weights."""
    net = channels_last(ARCHITECTURES[spec.arch]())
    return FaceModel(name, net, spec.size, spec.template, spec.mean, spec.std, role, spec.source)


def read_state(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from a weights file (`torch.load(weights_only=True)`): a bare state dict, or a training
    checkpoint holding one under `net_state_dict` / `state_dict` / `model`."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure is a bad weights file
        raise WeightsError(f"{path}: not a readable weights file ({type(e).__name__}: {e})") from None
    for key in ("net_state_dict", "state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{path}: holds no state dict of tensors")
    return {k.removeprefix("module."): v for k, v in obj.items()}  # DataParallel prefixes


def load_strict(net: nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """`load_state_dict(strict=True)` with an error that names the missing, unexpected and mis-shaped keys."""
    own = net.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or shapes:

        def show(keys):
            return ", ".join(keys[:4]) + (f" (+{len(keys) - 4} more)" if len(keys) > 4 else "")

        parts = [
            f"{len(missing)} missing ({show(missing)})" if missing else "",
            f"{len(unexpected)} unexpected ({show(unexpected)})" if unexpected else "",
            f"{len(shapes)} of another shape ({show(shapes)})" if shapes else "",
        ]
        raise WeightsError(f"{what}: the weights do not match the architecture: " + "; ".join(p for p in parts if p))
    net.load_state_dict(state, strict=True)


def load_pretrained(name: str, shared_root: str | Path, role: str = "surrogate") -> FaceModel:
    """A pretrained recognizer (`PRETRAINED[name]`): checksum first (the data-source table), then the weights."""
    from tenfold.components.data.sources import DataCorrupt, locate

    spec = PRETRAINED[name]
    try:
        path = locate(spec.source, shared_root)  # verifies the SHA-256
    except DataCorrupt as e:
        raise WeightsError(str(e)) from None
    model = isolated(lambda: build(name, spec, role))  # its random init is overwritten: keep others' draws intact
    load_strict(model.net, read_state(path), f"{name} ({path})")
    return model.eval()


def surrogate_spec() -> Spec:
    """The surrogates trained here share the MS1M MobileFaceNet's architecture, input and normalisation."""
    s = PRETRAINED["ms1m"]
    return Spec(s.arch, s.size, s.template, s.mean, s.std, "", "MobileFaceNet trained here")


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
