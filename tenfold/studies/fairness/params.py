"""Typed params of the `fairness` study (section `fairness` of params.yaml).

The headline runs on faces (`faces`, `face_model`, `face_train`, `curves`, `helps`); the medical and tabular sets
(`data`, `model`, `train`) are the secondary tables; `baseline` is fairlearn's reduction, `eval` the claim."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from tenfold.core.config import Strict

DATASETS = ("hearts", "adult", "compas", "german", "digits", "celeba")
METHODS = ("erm", "penalty", "lagrangian", "adversarial")
NOTIONS = ("dp", "eo", "eopp")
FACE_TASKS = ("age_gender", "gender_race")
Notion = Literal["dp", "eo", "eopp"]
Method = Literal["erm", "penalty", "lagrangian", "adversarial"]


class FairnessData(Strict):
    """The secondary datasets (medical, tabular; digits and CelebA on request) and how much of each (seeded,
    stratified by label x group)."""

    datasets: list[Literal["hearts", "adult", "compas", "german", "digits", "celeba"]] = ["hearts"]
    test_fraction: float = Field(0.3, gt=0, lt=1)
    max_train: int | None = Field(1500, ge=20, description="cap on training rows (large sets); null = all")
    max_test: int | None = Field(4000, ge=20, description="cap on test rows; null = all")
    digits_source: Literal["mnist5k", "digits"] = "mnist5k"
    celeba_target: str = "Smiling"
    celeba_group: str = "Male"
    celeba_size: int = Field(64, ge=16, description="CelebA images are resized to size x size")

    @field_validator("datasets")
    @classmethod
    def _unique(cls, v):
        return list(dict.fromkeys(v))


class FairnessModel(Strict):
    """Secondary datasets: an MLP (tabular) or a small CNN (digits, CelebA) per width."""

    widths: list[int] = Field([256], description="hidden units (MLP) / channels (CNN, via the ratio)")
    depth: int = Field(3, ge=1, description="hidden layers of the MLP / conv blocks of the CNN")
    image_arch: Literal["cnn", "mlp"] = Field(
        "cnn",
        description="model for digits and CelebA: a small CNN or the "
        "MLP on flattened pixels; tabular data always use the MLP",
    )
    cnn_channel_ratio: float = Field(1 / 16, gt=0, description="digits/CelebA CNN channels = width x this (>= 2)")

    @field_validator("widths")
    @classmethod
    def _widths(cls, v):
        if not v or min(v) < 1:
            raise ValueError("widths must be a non-empty list of positive integers")
        return sorted(set(v))


class FairnessTrain(Strict):
    """Deep-net training with a fairness constraint; one run records train/test metrics at each `eval_epochs`."""

    methods: list[Method] = ["erm", "penalty", "lagrangian", "adversarial"]
    notions: list[Notion] = Field(["eo"], description="notions the constrained methods are trained for")
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
        if not any(m != "erm" for m in self.methods):
            raise ValueError("methods needs at least one constrained method (penalty, lagrangian, adversarial)")
        return self


class FairnessFaces(Strict):
    """The headline data: UTKFace (stage `build_utkface` decodes ../shared/data/faces/utkface64 into
    <data_root>/utkface64/faces.npz). Tasks: `age_gender` (y = age >= age_threshold, s = female) and `gender_race`
    (y = female, s = 1 for the races in race_s1, 0 for those in race_s0). Splits are seeded and stratified by
    (y, s): a test set of n_test faces, a held-out set of n_val (early stopping), and the training faces, whose
    first n (a stratified order) make the training set of size n."""

    tasks: list[Literal["age_gender", "gender_race"]] = ["age_gender"]
    main: Literal["age_gender", "gender_race"] = Field("age_gender", description="task of the headline claim")
    age_threshold: int = Field(40, ge=1, le=116)
    race_s0: list[int] = Field([0], description="gender_race: races of group s = 0 (0 White)")
    race_s1: list[int] = Field(
        [1, 2, 3, 4], description="gender_race: races of group s = 1 (1 Black, 2 Asian, 3 Indian, 4 Others)"
    )
    size: Literal[16, 32, 64] = Field(32, description="the 64x64 faces are average-pooled to size x size")
    n_train: int = Field(500, ge=20, description="training faces of every run (the size axis varies it)")
    n_val: int = Field(500, ge=20, description="held-out faces for early stopping (not used in training)")
    n_test: int = Field(4000, ge=20)
    other_notions: list[Notion] = Field(["eo"], description="notions trained on the tasks other than `main`")
    limit: int | None = Field(
        None,
        ge=100,
        description="build_utkface: decode only this many faces (a seeded subset, for quick tests); null = all",
    )

    @model_validator(mode="after")
    def _faces(self):
        if not self.tasks:
            raise ValueError("faces.tasks must be non-empty")
        self.__dict__["tasks"] = list(dict.fromkeys(self.tasks))
        if self.main not in self.tasks:
            raise ValueError(f"faces.main {self.main!r} must be one of faces.tasks {self.tasks}")
        races = set(self.race_s0) | set(self.race_s1)
        if not self.race_s0 or not self.race_s1 or set(self.race_s0) & set(self.race_s1) or not races <= set(range(5)):
            raise ValueError("race_s0 and race_s1 must be disjoint, non-empty lists of UTKFace races 0..4")
        return self


class FairnessFaceModel(Strict):
    """Deep conv nets on the faces: `cnn` (SmallCNN: `depth` stride-2 conv blocks of `width` channels) and
    `resnet` (a ResNet-style net: stem + 3 stages of basic residual blocks, `width`, 2x, 4x channels)."""

    archs: list[Literal["cnn", "resnet"]] = Field(
        ["resnet"], description="nets trained; the CNN capacity axis (`cnn`) is in profile cpu-full (CPU budget)"
    )
    widths: list[int] = Field([8, 32], description="CNN channels: the capacity axis (when archs has cnn)")
    resnet_widths: list[int] = Field([4], description="ResNet base channels")
    depth: int = Field(3, ge=1, description="conv blocks of the CNN")
    headline: Literal["cnn", "resnet"] = Field(
        "resnet",
        description="the net of the claim, at its largest width: every notion, the other face tasks, the size axis "
        "and the what-helps rows are trained on it",
    )
    notion_widths: Literal["largest", "all"] = Field(
        "largest", description="notions other than the claim's are trained on the headline net only (or all widths)"
    )

    @field_validator("widths", "resnet_widths")
    @classmethod
    def _widths(cls, v):
        if not v or min(v) < 1:
            raise ValueError("widths must be a non-empty list of positive integers")
        return sorted(set(v))

    @field_validator("archs")
    @classmethod
    def _archs(cls, v):
        if not v:
            raise ValueError("archs must name at least one net (cnn, resnet)")
        return list(dict.fromkeys(v))

    @model_validator(mode="after")
    def _headline(self):
        if self.headline not in self.archs:
            raise ValueError(f"headline {self.headline!r} must be one of archs {self.archs}")
        return self


def _face_train() -> FairnessTrain:
    return FairnessTrain(notions=["eo", "dp"], epochs=100, eval_epochs=[5, 10, 20, 40, 70, 100], seeds=3)


class FairnessCurves(Strict):
    sizes: list[int] = Field(
        [],
        description="training-set-size axis besides faces.n_train (main task, "
        "headline net, claim notion, constrained methods); profile cpu-full: [250]",
    )

    @field_validator("sizes")
    @classmethod
    def _sizes(cls, v):
        if any(n < 20 for n in v):
            raise ValueError("sizes must be >= 20")
        return sorted(set(v))


class FairnessHelps(Strict):
    """What helps a constraint generalise (main task, largest CNN width, claim notion): early stopping on the
    held-out gap (from the same runs), weight decay, augmentation, and the smallest width (from the width axis)."""

    methods: list[Literal["penalty", "lagrangian", "adversarial"]] = ["lagrangian"]
    weight_decay: float = Field(1e-3, gt=0, description="the weight-decay row (Adam's L2 term)")
    augment: bool = Field(True, description="the augmentation row: random horizontal flip + 2-pixel shifts")
    early_stop_tolerance: float = Field(
        0.02,
        ge=0,
        le=1,
        description="early stopping picks the evaluated epoch "
        "with the smallest held-out gap among those within this of the best "
        "held-out accuracy",
    )


class FairnessBaseline(Strict):
    """fairlearn reductions (Agarwal et al., 2018) with logistic regression as the classical baseline."""

    enabled: bool = True
    max_iter: int = Field(50, ge=1, description="ExponentiatedGradient iterations")
    eps: float = Field(0.01, gt=0, description="ExponentiatedGradient constraint slack")
    pca_components: int = Field(64, ge=1, description="faces: pixels reduced to this many principal components")
    embeddings: list[Literal["ms1m", "casia"]] = Field(
        default_factory=list,
        description="faces: also fit the reduction on these pretrained recognizers' embeddings of the faces",
    )


class FairnessEval(Strict):
    claim_notion: Notion = Field("eo", description="notion of the headline claim")
    overfit_ratio: float = Field(2.0, gt=0, description="claim: test gap >= ratio x train gap")
    noise_permutations: int = Field(200, ge=0, description="random group relabellings for the test-gap noise floor")
    floor_quantile: float = Field(0.95, gt=0, lt=1, description="claim: test gap > this quantile of the floor")
    accept_max_train_gap: float = Field(
        0.1, ge=0, le=1, description="registry alias moves only if the main model's train gap is below"
    )


class FairnessParams(Strict):
    faces: FairnessFaces = FairnessFaces()
    face_model: FairnessFaceModel = FairnessFaceModel()
    face_train: FairnessTrain = Field(default_factory=_face_train)
    curves: FairnessCurves = FairnessCurves()
    helps: FairnessHelps = FairnessHelps()
    data: FairnessData = FairnessData()
    model: FairnessModel = FairnessModel()
    train: FairnessTrain = FairnessTrain()
    baseline: FairnessBaseline = FairnessBaseline()
    eval: FairnessEval = FairnessEval()

    @model_validator(mode="after")
    def _claim_notion(self):
        if self.eval.claim_notion not in self.face_train.notions:
            raise ValueError(f"eval.claim_notion {self.eval.claim_notion!r} must be one of face_train.notions")
        return self
