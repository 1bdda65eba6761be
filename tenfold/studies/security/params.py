"""Typed params of the `security` study: data, victims, budget, crafting (stage craft_poisons) and the grid."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from tenfold.components.defenses.names import check_names
from tenfold.core.config import Strict


class Data(Strict):
    """`cifar10`: the arrays of DVC stage build_cifar10 (<data_root>/cifar10); `mnist5k`, `digits`: packaged digits."""

    dataset: Literal["mnist5k", "digits", "cifar10"] = "cifar10"
    n_train: int = Field(3000, ge=20, description="class-stratified seeded training subset")
    n_test: int = Field(2000, ge=10, description="class-stratified seeded test subset (targets, triggers, accuracy)")


class Victim(Strict):
    """The victims' (and the clean network's) architecture and from-scratch recipe: SGD (Nesterov), linear warm-up,
    step decay x0.1 at 3/8, 5/8, 7/8 (or a cosine), random crop + flip, input normalisation inside the ResNet."""

    arch: Literal["resnet", "convnet"] = Field(
        "resnet", description="resnet: small GroupNorm ResNet (32x32 RGB); convnet: the two-block digits ConvNet"
    )
    blocks: list[int] = Field([1, 1, 1], min_length=1, description="basic blocks per ResNet stage")
    first_stride: int = Field(
        2,
        ge=1,
        le=2,
        description="stride of the ResNet's first stage (2: half resolution "
        "from the first block on, about 3x cheaper on CPU)",
    )
    width: int = Field(16, ge=2)
    epochs: int = Field(
        6, ge=1, description="from-scratch epochs of every victim and the clean network (cosine: 6 match 10 step-decay)"
    )
    finetune_epochs: int = Field(5, ge=1, description="head-only epochs of the fine-tuning victim")
    batch_size: int = Field(64, ge=2)
    lr: float = Field(0.1, gt=0)
    finetune_lr: float = Field(0.05, gt=0)
    weight_decay: float = Field(5e-4, ge=0)
    warmup_epochs: float = Field(1.0, ge=0, description="linear learning-rate warm-up")
    schedule: Literal["step", "cosine"] = Field(
        "cosine",
        description="learning-rate decay of every victim and the clean network: step (x0.1 at 3/8, 5/8, 7/8, the "
        "benchmark's) or cosine (per epoch)",
    )
    augment: bool = Field(True, description="random crop (4 px zero padding) and, if `flip`, horizontal flip")
    flip: bool = Field(True, description="horizontal flips (off for digits: not label-preserving)")
    min_clean_acc: float = Field(
        0.2,
        ge=0,
        le=1,
        description="a victim below this clean accuracy is reported as failed training and excluded from success rates",
    )


class Diagnostic(Strict):
    """Continued training of the clean network for the targeted-poison dilution check (`dilution_diagnostic`)."""

    enabled: bool = True
    steps: int = Field(3, ge=1, description="full-batch SGD steps on the poisons alone (and on their bases)")
    lr: float = Field(0.01, gt=0)
    set_epochs: int = Field(2, ge=1, description="epochs of continued training on the whole (poisoned) set")
    set_lr: float = Field(0.01, gt=0)
    setups: int = Field(4, ge=1, description="gradient-matching setups checked (the first ones)")


class Budget(Strict):
    eps: float = Field(16, gt=0, le=255, description="l_inf radius in pixel units /255")
    poison_fraction: float = Field(0.01, gt=0, lt=1)
    patch_size: int = Field(8, ge=1, description="trigger side in pixels (the lab's patch recipe passes it as --eps)")


class GradientMatching(Strict):
    iters: int = Field(250, ge=1)
    restarts: int = Field(1, ge=1)
    tau: float = Field(0.1, gt=0, description="signAdam learning rate in normalised input units (the lab's rule 2)")
    augment: bool = Field(True, description="differentiable translation (and flips if the victims flip) in the loop")


class FeatureCollision(Strict):
    iters: int = Field(150, ge=1)
    lr: float = Field(0.01, gt=0)
    beta: float = Field(0.25, ge=0)


class AdamCraft(Strict):
    iters: int = Field(150, ge=1)
    lr: float = Field(0.01, gt=0)


class PGDCraft(Strict):
    steps: int = Field(10, ge=1)
    step: float = Field(0.25, gt=0, description="PGD step in units of eps")


class BadNets(Strict):
    fraction: float | None = Field(0.05, gt=0, lt=1, description="poisoned fraction for BadNets (null = budget)")


class Patch(Strict):
    """The lab's patch backdoor (`--recipe patch`): clean-label poisons of the adversarial class."""

    fraction: float | None = Field(None, gt=0, lt=1, description="poisoned fraction (null = the budget)")
    size: int | None = Field(None, ge=1, description="patch side in pixels (null = budget.patch_size)")


class LabelFlip(Strict):
    fraction: float = Field(0.2, gt=0, lt=1)


class Craft(Strict):
    """Attack hyperparameters (one sub-section per attack) and how many setups (targets/trials) to craft."""

    attacks: list[str] = [
        "patch",
        "badnets",
        "label_flip",
        "poison_frogs",
        "bullseye_polytope",
        "gradient_matching",
        "clean_label_backdoor",
        "hidden_trigger",
    ]
    adaptive: list[Literal["mixup", "cutmix"]] = Field(
        ["cutmix"], description="adaptive gradient matching: defense mixing inside the crafting loss"
    )
    trials: int = Field(1, ge=1, description="setups (target images / backdoor classes) per attack, fixed by seed")
    targets: int = Field(
        8,
        ge=1,
        description="setups (target images) of gradient matching, the claim's success rate "
        "(the other attacks and the adaptive variants use `trials`)",
    )
    gradient_matching: GradientMatching = GradientMatching()
    poison_frogs: FeatureCollision = FeatureCollision()
    bullseye_polytope: AdamCraft = AdamCraft()
    clean_label_backdoor: PGDCraft = PGDCraft()
    hidden_trigger: AdamCraft = AdamCraft()
    label_flip: LabelFlip = LabelFlip()
    badnets: BadNets = BadNets()
    patch: Patch = Patch()

    @field_validator("attacks")
    @classmethod
    def _known(cls, v):
        from tenfold.components.attacks import ATTACKS

        bad = [a for a in v if a not in ATTACKS]
        if bad:
            raise ValueError(f"unknown attack(s) {bad}; registered: {sorted(ATTACKS)}")
        return v


class Mixup(Strict):
    alpha: float = Field(1.0, gt=0)
    nway: int = Field(2, ge=2)


class CutMix(Strict):
    alpha: float = Field(1.0, gt=0)
    prob: float = Field(0.5, ge=0, le=1)


class Cutout(Strict):
    alpha: float = Field(1.0, gt=0, le=1)


class MaxUp(Strict):
    alpha: float = Field(1.0, gt=0, le=1)
    ntrials: int = Field(4, ge=1)
    warmup_epochs: int = Field(1, ge=0)


class DPSGD(Strict):
    noise_multiplier: float = Field(1.0, ge=0)
    max_grad_norm: float = Field(1.0, gt=0)
    delta: float = Field(1e-5, gt=0, lt=1)


class BatchClipNoise(Strict):
    clip: float = Field(1.0, gt=0)
    noise: float = Field(0.01, ge=0)


class Spectral(Strict):
    overestimate: float = Field(1.5, gt=0)


class ActivationClustering(Strict):
    dims: int = Field(10, ge=1)
    max_share: float = Field(0.35, gt=0, le=0.5)
    seed: int = 0


class Strip(Strict):
    n: int = Field(20, ge=1)
    frr: float = Field(0.05, gt=0, lt=1)
    seed: int = 0


class Defenses(Strict):
    """Hyperparameters of every registered defense (one sub-section each)."""

    mixup: Mixup = Mixup()
    cutmix: CutMix = CutMix()
    cutout: Cutout = Cutout()
    maxup: MaxUp = MaxUp()
    dpsgd: DPSGD = DPSGD()
    batch_clip_noise: BatchClipNoise = BatchClipNoise()
    spectral_signatures: Spectral = Spectral()
    activation_clustering: ActivationClustering = ActivationClustering()
    strip: Strip = Strip()


class FocusGroup(Strict):
    """Extra grid cells: these defenses against these attacks only (adaptive labels like
    `gradient_matching+cutmix` allowed), so that every registered defense is measured without the full product."""

    attacks: list[str]
    defenses: list[str]

    _defs = field_validator("defenses")(classmethod(lambda cls, v: check_names(v)))


class SecurityParams(Strict):
    """Section `security`: data, victims, budget, crafting (stage craft_poisons) and the attack x defense grid."""

    data: Data = Data()
    victim: Victim = Victim()
    budget: Budget = Budget()
    craft: Craft = Craft()
    defense: Defenses = Defenses()
    grid_defenses: list[str] = ["none", "spectral_signatures", "activation_clustering", "strip"]
    grid_focus: list[FocusGroup] = Field(
        default_factory=lambda: [FocusGroup(attacks=["gradient_matching+cutmix"], defenses=["none", "cutmix"])],
        description="extra (attacks x defenses) blocks beyond the full grid: the adaptive attack against none "
        "and CutMix (CPU budget; the paper profile adds every other registered defense against the patch "
        "backdoor, which stage augmentation measures in the CPU default)",
    )
    victims: list[Literal["from-scratch", "fine-tune"]] = Field(
        ["from-scratch", "fine-tune"],
        description="victims trained for every attack under the `none` defense "
        "(other defenses use the attack's registry victim)",
    )
    diagnostic: Diagnostic = Field(
        Diagnostic(),
        description="gradient-matching dilution check (poisons alone "
        "vs the unperturbed bases vs the whole poisoned set)",
    )
    gm_success_target: float = Field(0.30, ge=0, le=1)
    accept_min_clean_acc: float = Field(
        0.35, ge=0, le=1, description="the clean network's acceptance check (moves the registered model's alias)"
    )

    _grid = field_validator("grid_defenses")(classmethod(lambda cls, v: check_names(v)))
