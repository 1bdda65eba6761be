"""Typed params of the `gradinit` study (section `gradinit` of params.yaml)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from tenfold.core.config import Strict


class GradInitConfig(Strict):
    """The GradInit procedure (Zhu et al. 2021, Alg. 1); defaults are the CIFAR-10 SGD settings of the code."""

    alg: Literal["sgd", "adam"] = Field("sgd", description="sgd: A[g] = g/||g||_2; adam: A[g] = sign(g)")
    iters: int = Field(390, ge=1, description="GradInit iterations (one epoch of CIFAR-10 at batch 128)")
    lr: float = Field(1e-2, gt=0, description="learning rate of the scale optimiser (gradinit-lr)")
    eta: float = Field(0.1, gt=0, description="step size eta of the simulated first update")
    gamma: float = Field(1.0, gt=0, description="gradient-norm constraint; a constraint step when ||g|| > gamma")
    min_scale: float = Field(0.01, ge=0, description="lower bound of weight scales (bias scales >= 0)")
    max_scale: float | None = Field(None, gt=0, description="upper bound of LayerNorm weight scales (100 for Post-LN)")
    grad_clip: float = Field(1.0, gt=0, description="per-scale gradient clipping")
    beta2: float = Field(0.999, gt=0, lt=1)
    batch_size: int = Field(128, ge=2, description="batch S, split in two halves S0, S1")
    overlap: bool = Field(True, description="S~ = S0 + a fresh half batch (50% overlap); false = disjoint")


class ImageData(Strict):
    dataset: Literal["cifar10", "mnist5k", "digits"] = Field(
        "cifar10", description="cifar10 = the arrays of DVC stage build_cifar10 (25k train / 10k test offline)"
    )
    n_train: int | None = Field(None, ge=10, description="class-stratified subset; null = the whole training split")
    n_test: int | None = Field(2000, ge=10, description="class-stratified subset; null = the whole test split")


class ImageTrain(Strict):
    """Training after initialisation: SGD momentum 0.9, cosine schedule, grad-norm clip (as `--train-clip 1`)."""

    epochs: int = Field(1, ge=1)
    cosine_epochs: int | None = Field(
        200,
        ge=1,
        description="length of the cosine schedule in epochs (the paper: "
        "200); null = the epochs trained. Longer than `epochs`: training stops early "
        "on the schedule, as the paper's first epochs",
    )
    batch_size: int = Field(64, ge=1)
    lr: float = Field(0.05, gt=0, description="the code's lr 0.1 at batch 128, scaled to the batch")
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(1e-4, ge=0)
    clip: float | None = Field(1.0, gt=0, description="gradient-norm clipping during training; null = off")
    first_epoch_points: int = Field(
        10,
        ge=0,
        description="test accuracy at this many evenly spaced steps of the "
        "first epoch (the within-epoch curve); 0 = only at the end of each epoch",
    )
    resnet_bias_lr_factor: float = Field(
        0.1,
        gt=0,
        description="biases of the no-BN ResNet train at lr * this "
        "(the official train_cifar.py: base_lr / 10); 1 = one lr for all",
    )


class ImageModel(Strict):
    vgg_depth: Literal[11, 13, 16, 19] = 19
    vgg_width: float = Field(0.125, gt=0, description="channel multiplier of VGG (1 = 64..512)")
    resnet_blocks: int = Field(3, ge=1, description="BasicBlocks per stage; depth = 6 * blocks + 2")
    resnet_width: int = Field(8, ge=1, description="channels of the first stage (16 in the paper)")


class ImageStudy(Strict):
    enabled: bool = True
    models: list[Literal["vgg", "resnet"]] = ["vgg"]
    seeds: int = Field(3, ge=1)
    data: ImageData = ImageData()
    model: ImageModel = ImageModel()
    train: ImageTrain = ImageTrain()
    vgg_init: GradInitConfig = GradInitConfig(lr=1e-2, iters=390, batch_size=64)
    resnet_init: GradInitConfig = GradInitConfig(lr=5e-2, iters=40, batch_size=64)


class SeqTask(Strict):
    task: Literal["copy", "reverse", "sort"] = "sort"
    vocab: int = Field(10, ge=2)
    length: int = Field(8, ge=2)
    n_test: int = Field(256, ge=16)


class SeqModel(Strict):
    d_model: int = Field(32, ge=8)
    heads: int = Field(4, ge=1)
    layers: int = Field(8, ge=1)
    ffn: int = Field(64, ge=8)
    dropout: float = Field(0.1, ge=0, lt=1)

    @model_validator(mode="after")
    def _heads_divide(self):
        if self.d_model % self.heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by heads ({self.heads})")
        return self


class SeqTrain(Strict):
    """Adam (0.9, 0.98), constant learning rate, no warmup (the setting of the paper's IWSLT experiment)."""

    steps: int = Field(200, ge=1)
    batch_size: int = Field(32, ge=1)
    lrs: list[float] = [0.005, 0.01, 0.014, 0.02]
    weight_decay: float = Field(0.0, ge=0)
    trains_threshold: float = Field(0.8, gt=0, le=1, description="a run 'trains' if test token accuracy >= this")
    diverge_window: int = Field(
        50,
        ge=1,
        description="a run 'diverged' if its loss is non-finite or the mean "
        "training loss of its last `diverge_window` steps is >= (1 - diverge_tolerance) x "
        "min(first step's loss, ln vocab)",
    )
    diverge_tolerance: float = Field(0.02, ge=0, lt=1)


class TransformerStudy(Strict):
    enabled: bool = True
    task: SeqTask = SeqTask()
    model: SeqModel = SeqModel()
    train: SeqTrain = SeqTrain()
    init: GradInitConfig = GradInitConfig(
        alg="adam",
        iters=100,
        lr=1e-2,
        eta=0.02,
        gamma=1000.0,
        beta2=0.98,
        grad_clip=1e8,
        max_scale=100.0,
        batch_size=32,
    )


class GradInitParams(Strict):
    images: ImageStudy = ImageStudy()
    transformer: TransformerStudy = TransformerStudy()
    first_epoch_margin: float = Field(0.0, description="gradinit_first_epoch holds if GradInit - Kaiming > margin")
