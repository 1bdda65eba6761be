"""Typed params of the `fairness` study (section `fairness` of params.yaml)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from tenfold.core.config import Strict

DATASETS = ("hearts", "adult", "compas", "german", "digits", "celeba")
METHODS = ("erm", "penalty", "lagrangian", "adversarial")
NOTIONS = ("dp", "eo", "eopp")


class FairnessData(Strict):
    """Which datasets to use and how much of each (seeded, stratified by label x group)."""

    datasets: list[Literal["hearts", "adult", "compas", "german", "digits", "celeba"]] = [
        "hearts",
        "german",
        "compas",
        "adult",
        "digits",
    ]
    main: Literal["hearts", "adult", "compas", "german", "digits", "celeba"] = Field(
        "hearts", description="dataset of the headline claim (the paper's medical-diagnosis setting)"
    )
    test_fraction: float = Field(0.3, gt=0, lt=1)
    max_train: int | None = Field(1500, ge=20, description="cap on training rows (large sets); null = all")
    max_test: int | None = Field(4000, ge=20, description="cap on test rows; null = all")
    digits_source: Literal["mnist5k", "digits"] = "mnist5k"
    celeba_target: str = "Smiling"
    celeba_group: str = "Male"
    celeba_size: int = Field(64, ge=16, description="CelebA images are resized to size x size")

    @field_validator("datasets")
    @classmethod
    def _nonempty(cls, v):
        if not v:
            raise ValueError("at least one dataset")
        return list(dict.fromkeys(v))


class FairnessModel(Strict):
    """Model capacity sweep: an MLP (tabular) or a small CNN (images) per width."""

    widths: list[int] = Field([16, 64, 256], description="hidden units (MLP) / channels (CNN), the capacity axis")
    depth: int = Field(3, ge=1, description="hidden layers of the MLP / conv blocks of the CNN")
    image_arch: Literal["cnn", "mlp"] = Field(
        "cnn",
        description="model for image datasets (digits, celeba): a small "
        "CNN or the MLP on flattened pixels; tabular data always use the MLP",
    )
    cnn_channel_ratio: float = Field(
        1 / 16,
        gt=0,
        description="CNN channels = width x this (at least 2), so the capacity axis `widths` also scales the CNN",
    )

    @field_validator("widths")
    @classmethod
    def _widths(cls, v):
        if not v or min(v) < 1:
            raise ValueError("widths must be a non-empty list of positive integers")
        return sorted(set(v))


class FairnessTrain(Strict):
    """Deep-net training with a fairness constraint; one run records train/test metrics at each `eval_epochs`."""

    methods: list[Literal["erm", "penalty", "lagrangian", "adversarial"]] = [
        "erm",
        "penalty",
        "lagrangian",
        "adversarial",
    ]
    notions: list[Literal["dp", "eo", "eopp"]] = ["dp", "eo", "eopp"]
    epochs: int = Field(100, ge=1)
    eval_epochs: list[int] = Field([5, 25, 50, 100], description="training-length axis (<= epochs)")
    batch_size: int = Field(128, ge=2, description=">= training rows means full-batch")
    lr: float = Field(2e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    epsilon: float = Field(0.05, ge=0, le=1, description="constraint: fairness gap <= epsilon on training data")
    penalty_weight: float = Field(3.0, ge=0, description="lambda of the fixed penalty loss + lambda * gap")
    dual_lr: float = Field(0.5, gt=0, description="Lagrangian: step of dual ascent on the multiplier")
    adversary_weight: float = Field(1.0, ge=0, description="alpha of Zhang et al. (2018) adversarial debiasing")
    adversary_width: int = Field(32, ge=1)
    adversary_lr: float = Field(1e-3, gt=0)
    seeds: int = Field(2, ge=1, description="independent seeds per configuration")

    @model_validator(mode="after")
    def _consistent(self):
        bad = [e for e in self.eval_epochs if e < 1 or e > self.epochs]
        if bad or not self.eval_epochs:
            raise ValueError(f"eval_epochs must be non-empty and within 1..epochs={self.epochs}, got {bad}")
        self.__dict__["eval_epochs"] = sorted(set(self.eval_epochs))
        if not self.methods or not self.notions:
            raise ValueError("methods and notions must be non-empty")
        return self


class FairnessSweep(Strict):
    """Which (dataset, method, notion, width) combinations to train: the full grid on `data.main`,
    the constrained methods for `other_notions` at the largest width elsewhere (keeps the CPU default short)."""

    full_grid_on_main: bool = True
    other_notions: list[Literal["dp", "eo", "eopp"]] = ["eo"]
    other_widths: Literal["largest", "all"] = "largest"


class FairnessBaseline(Strict):
    """fairlearn reductions (Agarwal et al., 2018) with logistic regression as the classical baseline."""

    enabled: bool = True
    max_iter: int = Field(50, ge=1, description="ExponentiatedGradient iterations")
    eps: float = Field(0.01, gt=0, description="ExponentiatedGradient constraint slack")


class FairnessEval(Strict):
    claim_notion: Literal["dp", "eo", "eopp"] = Field("eo", description="notion of the headline claim")
    overfit_ratio: float = Field(2.0, gt=0, description="claim: test gap >= ratio x train gap")
    noise_permutations: int = Field(200, ge=0, description="random group relabellings for the test-gap noise floor")
    accept_max_train_gap: float = Field(
        0.1, ge=0, le=1, description="registry alias moves only if the main model's train gap is below"
    )


class FairnessParams(Strict):
    data: FairnessData = FairnessData()
    model: FairnessModel = FairnessModel()
    train: FairnessTrain = FairnessTrain()
    sweep: FairnessSweep = FairnessSweep()
    baseline: FairnessBaseline = FairnessBaseline()
    eval: FairnessEval = FairnessEval()

    @model_validator(mode="after")
    def _main_in_datasets(self):
        if self.eval.claim_notion not in self.train.notions:
            raise ValueError(f"eval.claim_notion {self.eval.claim_notion!r} must be one of train.notions")
        if self.data.main not in self.data.datasets:
            raise ValueError(f"data.main {self.data.main!r} must be one of data.datasets {self.data.datasets}")
        if not any(m != "erm" for m in self.train.methods):
            raise ValueError("train.methods needs at least one constrained method (penalty, lagrangian, adversarial)")
        return self
