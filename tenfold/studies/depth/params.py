"""Typed params of the `depth` study (section `depth` of params.yaml)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from tenfold.core.config import Strict


class DepthData(Strict):
    dataset: Literal["cifar10", "mnist5k", "digits"] = Field(
        "cifar10", description="cifar10 = the arrays of DVC stage build_cifar10 (25k train / 10k test)"
    )
    n_train: int | None = Field(4000, ge=10, description="class-stratified subset; null = the whole training split")
    n_test: int | None = Field(2000, ge=10, description="class-stratified subset; null = the whole test split")
    standardize: bool = Field(
        True,
        description="per-channel standardisation with the training subset's mean and std "
        "(the official code's Normalize)",
    )


class DepthTrain(Strict):
    """SGD momentum 0.9, weight decay 2e-4, exponential warmup then step decay (the official launch scripts)."""

    epochs: int = Field(8, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(0.05, gt=0)
    recurrent_lr: float | None = Field(None, gt=0, description="lr of recurrent nets; null = same as lr")
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(2e-4, ge=0)
    warmup_epochs: int = Field(1, ge=0, description="exponential warmup lr*(1-exp(-(epoch+1)/warmup))")
    milestones: list[float] = Field([0.6, 0.8], description="fractions of the epochs where lr is multiplied by 0.1")
    clip: float | None = Field(1.0, gt=0, description="grad-norm clipping; null = off (as in the paper)")


class Family(Strict):
    """One model family and its effective depths (residual: 4k+3, cnn: k+3, mlp: k+2 for k iterations)."""

    name: Literal["residual", "residual_bn", "cnn", "mlp"]
    width: int = Field(16, ge=1, description="channels (residual, cnn) or hidden units (mlp)")
    depths: list[int]
    lr: float | None = Field(None, gt=0, description="overrides train.lr for this family")
    recurrent_lr: float | None = Field(
        None,
        gt=0,
        description="lr of this family's recurrent nets (the launch "
        "scripts: CNN 0.01 recurrent vs 0.05 feed-forward); null = lr",
    )

    @model_validator(mode="after")
    def _depths_valid(self):
        from tenfold.studies.depth.models import iterations

        for d in self.depths:
            iterations(self.name, d)  # raises a ValueError naming the bad depth
        return self


class DepthParams(Strict):
    data: DepthData = DepthData()
    families: list[Family] = [
        Family(name="residual", width=12, depths=[11, 15]),
        Family(name="mlp", width=128, depths=[4, 6, 8], lr=0.02),
        Family(name="cnn", width=16, depths=[5, 7], recurrent_lr=0.01),
    ]
    train: DepthTrain = DepthTrain()
    init: Literal["default", "kaiming"] = Field("kaiming", description="default = PyTorch's init (the paper's code)")
    seeds: int = Field(3, ge=1)
    max_gap: float = Field(0.03, gt=0, description="depth_emulation holds if the mean |rec - ff| accuracy gap <= this")
