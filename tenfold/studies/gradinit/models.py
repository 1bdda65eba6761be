"""The networks of the GradInit study: VGG and a deep ResNet without batch norm, and a Post-LN Transformer."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from tenfold.core.seeds import SeededDropout

VGG_CFG = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


class VGG(nn.Module):
    """VGG without batch norm: 3x3 convs with bias, ReLU, max-pooling; Kaiming (fan_out) init, linear N(0, 0.01).

    `width` scales the channel counts; pools that would shrink the map below 1x1 are skipped (28x28 MNIST).
    """

    def __init__(
        self, depth: int = 11, width: float = 1.0, in_channels: int = 3, num_classes: int = 10, image_size: int = 32
    ):
        super().__init__()
        layers, c, size = [], in_channels, image_size
        for v in VGG_CFG[depth]:
            if v == "M":
                if size >= 2:
                    layers.append(nn.MaxPool2d(2))
                    size //= 2
                continue
            out = max(1, int(round(v * width)))
            layers += [nn.Conv2d(c, out, 3, padding=1), nn.ReLU(inplace=False)]
            c = out
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.features(x)
        return self.classifier(F.adaptive_avg_pool2d(x, 1).flatten(1))


class _Block(nn.Module):
    """BasicBlock without BN: conv(bias)-ReLU-conv(bias) + option-A shortcut (subsample + zero channels)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.stride, self.pad = stride, cout - cin

    def forward(self, x):
        out = self.conv2(F.relu(self.conv1(x)))
        sc = x[:, :, :: self.stride, :: self.stride] if self.stride > 1 else x
        if self.pad:
            sc = F.pad(sc, (0, 0, 0, 0, 0, self.pad))
        return F.relu(out + sc)


class ResNet(nn.Module):
    """CIFAR ResNet-(6n+2) (He et al.) without batch norm: the paper's ResNet-110 has n = 18.

    Initialised as the official GradInit code does for `--no_bn`: convolutions Kaiming normal (fan_out, ReLU)
    with zero bias, the final linear layer PyTorch's default (uniform, bound 1/sqrt(fan_in)) with zero bias. A
    Kaiming-normal final layer instead gives this un-normalised network logits ~3x larger (std ~11 and an initial
    loss ~18 on MNIST for ResNet-20/8), from which the Kaiming baseline did not train in two epochs.
    """

    def __init__(self, blocks: int = 18, width: int = 16, in_channels: int = 3, num_classes: int = 10):
        super().__init__()
        self.depth = 6 * blocks + 2
        self.conv = nn.Conv2d(in_channels, width, 3, 1, 1)
        layers, c = [], width
        for stage in range(3):
            out = width * 2**stage
            for b in range(blocks):
                layers.append(_Block(c, out, 2 if (stage and b == 0) else 1))
                c = out
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(c, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
        nn.init.zeros_(self.fc.bias)  # the weight keeps nn.Linear's default initialisation

    def forward(self, x):
        x = self.layers(F.relu(self.conv(x)))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


class PostLNLayer(nn.Module):
    """Post-LN encoder layer: x = LN(x + Attn(x)); x = LN(x + FFN(x)) (Vaswani et al.; fairseq's default).

    Attention is written out (no fused kernel) so that GradInit's double backward works on every device.
    """

    def __init__(self, d: int, heads: int, ffn: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        self.fc1, self.fc2 = nn.Linear(d, ffn), nn.Linear(ffn, d)
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.drop = SeededDropout(dropout)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // self.heads), dim=-1)
        a = (self.drop(att) @ v).transpose(1, 2).reshape(b, t, d)
        x = self.ln1(x + self.drop(self.out(a)))
        return self.ln2(x + self.drop(self.fc2(self.drop(F.relu(self.fc1(x))))))


class PostLNTransformer(nn.Module):
    """Token + learned position embeddings, `layers` Post-LN layers, a per-position output head."""

    def __init__(
        self,
        vocab: int,
        length: int,
        d_model: int = 64,
        heads: int = 4,
        layers: int = 6,
        ffn: int = 256,
        dropout: float = 0.1,
    ):
        super().__init__()
        self.tok = nn.Embedding(vocab, d_model)
        self.pos = nn.Embedding(length, d_model)
        self.layers = nn.ModuleList(PostLNLayer(d_model, heads, ffn, dropout) for _ in range(layers))
        self.head = nn.Linear(d_model, vocab)
        self.scale = math.sqrt(d_model)
        nn.init.normal_(self.tok.weight, 0, d_model**-0.5)
        nn.init.normal_(self.pos.weight, 0, d_model**-0.5)

    def forward(self, x):
        h = self.tok(x) * self.scale + self.pos(torch.arange(x.shape[1], device=x.device))
        for layer in self.layers:
            h = layer(h)
        return self.head(h)
