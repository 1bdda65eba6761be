"""Params of study `secure_release` (arXiv:2103.02683): poisoning a dataset before release."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from tenfold.core.config import Strict

Arch = Literal["smallcnn", "cnn", "mlp", "resnet"]
Method = Literal["alignment", "adv_untargeted", "adv_targeted", "unlearnable", "random_noise"]


class ReleaseData(Strict):
    dataset: Literal["mnist5k", "mnist", "digits", "cifar10"] = "mnist5k"
    n_train: int | None = Field(1000, ge=10, description="released training items (null = all)")
    n_test: int | None = Field(1000, ge=10, description="clean validation items (null = all)")


class Surrogate(Strict):
    arch: Arch = "cnn"
    epochs: int = Field(8, ge=1)
    lr: float = Field(0.05, gt=0)
    batch_size: int = Field(128, ge=1)


class Craft(Strict):
    eps: float = Field(64.0, gt=0, le=255, description="l_inf budget in pixel units /255 (paper: 8)")
    steps: int = Field(40, ge=1, description="PGD iterations (paper code: 250)")
    tau: float = Field(0.1, gt=0, description="step size as a fraction of eps (paper code: 0.1)")
    restarts: int = Field(1, ge=1, description="paper code: 8")
    augment: bool = Field(True, description="differentiable translation in the loss (paper code: on)")
    schedule: Literal["constant", "multistep", "cosine"] = Field(
        "multistep", description="step-size schedule of the PGD steps (the lab's multistep decay)"
    )
    batch_size: int = Field(250, ge=1, description="poison batch (paper code: --pbatch 512)")


class Unlearnable(Strict):
    steps: int = Field(10, ge=1, description="noise descent steps per round (UE: 20)")
    train_steps: int = Field(10, ge=1, description="surrogate SGD steps per round (UE: 10)")
    stop_error: float = Field(0.01, ge=0, lt=1)
    max_rounds: int = Field(20, ge=1, description="cap on rounds; the stop_error rule normally ends earlier")


class Victims(Strict):
    archs: list[Arch] = Field(default_factory=lambda: ["cnn", "mlp", "resnet"], min_length=1)
    epochs: int = Field(10, ge=1)
    lr: float = Field(0.05, gt=0)
    batch_size: int = Field(128, ge=1)


class Online(Strict):
    enabled: bool = True
    batch_size: int = Field(10, ge=1, description="items protected per service call")
    steps: int | None = Field(20, ge=1, description="PGD steps online (null = craft.steps)")


class Counter(Strict):
    """An adversary's counter-moves against the released data (victim = victims.archs[0])."""

    adversarial_training: bool = True
    at_eps: float = Field(64.0, gt=0, description="PGD-AT budget /255")
    at_steps: int = Field(3, ge=1)
    mixup_alpha: float | None = Field(1.0, gt=0, description="alpha of the strong augmentations; null = off")
    augmentations: list[Literal["mixup", "cutmix"]] = Field(
        default_factory=lambda: ["mixup", "cutmix"],
        description="strong augmentations from the dataset-security registry (tenfold/components/defenses/augment.py)",
    )
    mixup_nway: int = Field(2, ge=2, description="k-way mixup (registry); 2 = classic mixup")


class Faces(Strict):
    enabled: bool = True
    side: int = Field(32, ge=16, description="faces are resized to side x side grey")
    train_per_subject: int = Field(7, ge=1, le=9)
    epochs: int = Field(30, ge=1)
    arch: Arch = "cnn"
    lr: float = Field(0.05, gt=0)
    batch_size: int = Field(32, ge=1, description="280 training faces: small batches for enough SGD steps")


class SecureReleaseParams(Strict):
    data: ReleaseData = ReleaseData()
    surrogate: Surrogate = Surrogate()
    craft: Craft = Craft()
    methods: list[Method] = Field(
        default_factory=lambda: ["alignment", "adv_targeted", "adv_untargeted", "unlearnable", "random_noise"],
        min_length=1,
    )
    unlearnable: Unlearnable = Unlearnable()
    victims: Victims = Victims()
    online: Online = Online()
    counter: Counter = Counter()
    faces: Faces = Faces()
    drop_target: float = Field(50.0, description="claim release_accuracy_drop: points of clean accuracy lost")
    online_tolerance: float = Field(5.0, ge=0, description="claim online_matches_batch: points")
    accept_min_surrogate_acc: float = Field(0.5, ge=0, le=1)

    @model_validator(mode="after")
    def _alignment_first(self):
        if "alignment" not in self.methods:
            raise ValueError("methods must include 'alignment' (the paper's method; the claims are about it)")
        return self
