"""Params of study `minimax` (arXiv:2010.12989): weighted minimax risk adversarial training."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from tenfold.core.config import Strict

Trainer = Literal["at", "weighted_at", "trades", "weighted_trades"]


class MinimaxData(Strict):
    dataset: Literal["mnist5k", "mnist", "digits", "cifar10"] = "mnist5k"
    n_train: int | None = Field(2000, ge=10)
    n_test: int | None = Field(500, ge=10)


class MinimaxTrain(Strict):
    arch: Literal["smallcnn", "cnn", "mlp", "resnet"] = "cnn"
    trainers: list[Trainer] = Field(default_factory=lambda: ["at", "weighted_at"], min_length=2)
    epochs: int = Field(6, ge=1)
    lr: float = Field(
        0.01,
        gt=0,
        description="the code's MNIST lr; 0.02 left weighted AT at a constant prediction for 1 of 3 seeds (0.05: all)",
    )
    batch_size: int = Field(32, ge=1, description="32 on CPU: 2,000 digits at 128 give too few SGD steps to learn")
    weight_decay: float = Field(5e-4, ge=0)
    warmup_epochs: float = Field(
        2.0,
        ge=0,
        description="eps and PGD step grow linearly from 0 over these epochs "
        "(same schedule for every trainer); 0 = full eps from the first step",
    )
    eps: float = Field(0.2, gt=0, description="train PGD budget (l_inf, pixels in [0,1]); MNIST code: 0.3")
    steps: int = Field(5, ge=1, description="train PGD steps; MNIST code: 40")
    step_size: float = Field(0.06, gt=0, description="MNIST code: 0.01")
    alpha: float = Field(2.0, ge=0, description="weight exp(-alpha * margin); code: 0.05 MNIST, 0.5 CIFAR AT, 2 TRADES")
    beta: float = Field(5.0, ge=0, description="TRADES trade-off (code default 5)")
    seeds: int = Field(
        3,
        ge=1,
        description="independent training seeds, fanned out as tasks; the table reports "
        "mean +- std and the claim uses the mean",
    )


class MinimaxEval(Strict):
    eps: float = Field(0.2, gt=0)
    steps: int = Field(10, ge=1, description="MNIST code: 40")
    step_size: float = Field(0.03, gt=0)
    restarts: int = Field(2, ge=1, description="code: 10")
    alphas: list[float] = Field(default_factory=lambda: [0.0, 1.0, 2.0, 5.0], min_length=2)
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
    accept_min_robust_acc: float = Field(0.3, ge=0, le=1)

    @model_validator(mode="after")
    def _claim_alpha_evaluated(self):
        if 0.0 not in self.eval.alphas or self.eval.claim_alpha not in self.eval.alphas:
            raise ValueError("eval.alphas must contain 0 (uniform attack) and eval.claim_alpha")
        if not ({"at", "weighted_at"} <= set(self.train.trainers)):
            raise ValueError("train.trainers must contain 'at' and 'weighted_at' (the claim compares them)")
        return self
