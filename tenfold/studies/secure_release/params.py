"""Params of study `secure_release` (arXiv:2103.02683): poisoning a dataset before release."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from tenfold.core.config import Strict

Arch = Literal["smallcnn", "cnn", "mlp", "resnet"]
Method = Literal["alignment", "adv_untargeted", "adv_targeted", "unlearnable", "random_noise"]


class ReleaseData(Strict):
    dataset: Literal["cifar10", "mnist5k", "mnist", "digits"] = Field(
        "cifar10", description="cifar10: the arrays of the DVC stage build_cifar10 under <data_root>/cifar10"
    )
    n_train: int | None = Field(1000, ge=10, description="released training items, class-stratified (null = all)")
    n_test: int | None = Field(2000, ge=10, description="clean validation items (null = all)")
    normalize: bool = Field(
        True,
        description="nets standardise their input per channel (statistics of the clean "
        "training images); poisons and the release service stay in [0, 1] pixel space",
    )


class Surrogate(Strict):
    arch: Arch = "cnn"
    epochs: int = Field(30, ge=1)
    lr: float = Field(0.05, gt=0)
    batch_size: int = Field(128, ge=1)
    augment: bool = Field(True, description="random crop (4 px) + horizontal flip while training")
    warmup_epochs: float = Field(1.0, ge=0, description="linear learning-rate warm-up")


class Craft(Strict):
    eps: float = Field(8.0, gt=0, le=255, description="l_inf budget in pixel units /255 (paper: 8)")
    steps: int = Field(250, ge=1, description="PGD iterations of the alignment poisons (paper code: 250)")
    baseline_steps: int | None = Field(
        None, ge=1, description="PGD iterations of the error-maximising baselines (null = steps)"
    )
    tau: float = Field(0.1, gt=0, description="step size as a fraction of eps (paper code: 0.1)")
    restarts: int = Field(1, ge=1, description="paper code: 8")
    augment: bool = Field(True, description="differentiable translation in the loss (paper code: on)")
    flip: bool = Field(True, description="random horizontal flip in the differentiable augmentation (paper code: on)")
    schedule: Literal["constant", "multistep", "cosine"] = Field(
        "constant",
        description="step-size schedule (the lab's PGD: constant tau * eps; its MultiStep decay applies "
        "only to the Adam-type optimisers)",
    )
    batch_size: int = Field(
        250,
        ge=1,
        description="poison batch: one cosine per batch (paper code: --pbatch 512); "
        "each batch is crafted by its own task",
    )


class Unlearnable(Strict):
    steps: int = Field(20, ge=1, description="noise descent steps per round (UE: 20)")
    tau: float = Field(0.1, gt=0, description="noise step as a fraction of eps (UE: 0.8/255 at 8/255)")
    train_steps: int = Field(10, ge=1, description="surrogate SGD steps per round (UE: 10)")
    stop_error: float = Field(0.01, ge=0, lt=1)
    max_rounds: int = Field(20, ge=1, description="cap on rounds; the stop_error rule normally ends earlier")


class Victims(Strict):
    archs: list[Arch] = Field(default_factory=lambda: ["cnn", "smallcnn", "mlp"], min_length=1)
    epochs: int = Field(20, ge=1)
    lr: float = Field(0.05, gt=0)
    batch_size: int = Field(128, ge=1)
    augment: bool = Field(True, description="random crop (4 px) + horizontal flip (the lab's evaluation recipe)")
    warmup_epochs: float = Field(1.0, ge=0, description="linear learning-rate warm-up, so every seed trains")
    min_clean_acc: float = Field(
        0.2,
        ge=0,
        le=1,
        description="a victim whose clean-trained copy stays below this "
        "clean test accuracy failed to train: reported, excluded from the claims",
    )


class Online(Strict):
    enabled: bool = True
    batch_size: int = Field(10, ge=1, description="items protected per service call")
    steps: int | None = Field(20, ge=1, description="PGD steps online (null = craft.steps)")


class Counter(Strict):
    """An adversary's counter-moves against the released data (victim = victims.archs[0])."""

    adversarial_training: bool = False
    at_eps: float = Field(8.0, gt=0, description="PGD-AT budget /255")
    at_steps: int = Field(3, ge=1)
    mixup_alpha: float | None = Field(None, gt=0, description="alpha of the strong augmentations; null = off")
    augmentations: list[Literal["mixup", "cutmix"]] = Field(
        default_factory=lambda: ["mixup", "cutmix"],
        description="strong augmentations from the dataset-security registry (tenfold/components/defenses/augment.py)",
    )
    mixup_nway: int = Field(2, ge=2, description="k-way mixup (registry); 2 = classic mixup")
    sets: list[Literal["clean", "alignment", "adv_targeted"]] = Field(
        default_factory=lambda: ["clean", "alignment", "adv_targeted"],
        description="training sets the counter-moves are tried on (adv_targeted only if crafted)",
    )


class FacesCraft(Strict):
    """The AT&T faces' alignment release (kept at the digits-era setting: faces stay as they were)."""

    eps: float = Field(64.0, gt=0, le=255, description="l_inf budget /255")
    steps: int = Field(40, ge=1)
    tau: float = Field(0.1, gt=0)
    schedule: Literal["constant", "multistep", "cosine"] = "multistep"
    flip: bool = Field(False, description="faces were crafted with translation only")


class Faces(Strict):
    enabled: bool = True
    side: int = Field(32, ge=16, description="faces are resized to side x side grey")
    train_per_subject: int = Field(7, ge=1, le=9)
    epochs: int = Field(30, ge=1)
    arch: Arch = "cnn"
    lr: float = Field(0.05, gt=0)
    batch_size: int = Field(32, ge=1, description="280 training faces: small batches for enough SGD steps")
    craft: FacesCraft = FacesCraft()


class Diagnostics(Strict):
    """Curves that explain the claim (each costs victims of the first arch, victims.archs[0])."""

    step_snapshots: list[int] = Field(
        default_factory=lambda: [10, 50],
        description="alignment iterates kept after these PGD steps (constant step: "
        "the iterate after k steps is the k-step release); the first victim arch trains on each: drop vs steps",
    )
    epoch_curve: bool = Field(
        True,
        description="the first arch's clean test accuracy after every epoch on clean, "
        "alignment and the baselines: drop vs victim epochs",
    )
    curve_epochs: list[int] | None = Field(
        default_factory=lambda: [1, 2, 5, 10, 15],
        description="the epochs the curve is evaluated at (null: every epoch; the last epoch is always in it): "
        "each point costs a pass over the test set, about as much as an epoch of training on 1,000 images",
    )
    eps_sweep: list[float] = Field(
        default_factory=list,
        description="extra budgets /255: the alignment and class-targeted releases (and random "
        "noise) crafted again at each, the first victim arch trains on each: accuracy vs eps with the baselines",
    )
    eps_sweep_steps: int | None = Field(None, ge=1, description="PGD steps of the eps sweep (null = craft.steps)")


class SecureReleaseParams(Strict):
    data: ReleaseData = ReleaseData()
    surrogate: Surrogate = Surrogate()
    craft: Craft = Craft()
    methods: list[Method] = Field(
        default_factory=lambda: ["alignment", "adv_targeted", "unlearnable", "random_noise"],
        min_length=1,
        description="releases crafted beside each other (adv_untargeted: the paper profile, CPU budget)",
    )
    unlearnable: Unlearnable = Unlearnable()
    victims: Victims = Victims()
    online: Online = Online()
    counter: Counter = Counter()
    faces: Faces = Faces()
    diagnostics: Diagnostics = Diagnostics()
    drop_target: float = Field(
        0.5,
        ge=0,
        le=1,
        description="claim release_accuracy_drop: the share of the victims' "
        "above-chance clean accuracy that the alignment release removes, "
        "(acc_clean - acc_released) / (acc_clean - 1/K), mean over the victims",
    )
    online_tolerance: float = Field(5.0, ge=0, description="claim online_matches_batch: points")
    accept_min_surrogate_acc: float = Field(0.3, ge=0, le=1)

    @model_validator(mode="after")
    def _alignment_first(self):
        if "alignment" not in self.methods:
            raise ValueError("methods must include 'alignment' (the paper's method; the claims are about it)")
        return self
