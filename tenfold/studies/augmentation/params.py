"""Typed params of the `augmentation` study (it reuses the poisons, data and victims of `security`)."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from tenfold.components.defenses.names import check_names
from tenfold.core.config import Strict


class AugmentationParams(Strict):
    """Section `augmentation`: defenses x attacks of arXiv:2011.09527, reusing the crafted poisons of `security`."""

    attacks: list[str] = ["badnets"]
    backdoor: str = Field("badnets", description="the backdoor attack of the two claims (one of `attacks`)")
    setups: int = Field(1, ge=1, description="crafted setups of each backdoor attack defended here (the first ones)")
    targeted_setups: int = Field(
        1,
        ge=1,
        description="crafted setups (targets) of each targeted attack (gradient "
        "matching, plain and adaptive) defended here (the first ones)",
    )
    defenses: list[str] = ["none", "mixup", "cutmix", "cutout", "maxup", "batch_clip_noise"]
    victim_epochs: int | None = Field(
        12, ge=1, description="epochs of this study's victims (None: security.victim.epochs); the schedule follows them"
    )
    epoch_curve: list[int] = Field(
        [24],
        description="other victim epochs at which the claims' backdoor is also run undefended and under CutMix (the "
        "training-length curve); the cut must persist at every longer length for cutmix_backdoor_cut to hold",
    )
    dp_noise: list[float] = Field([1.0], description="DP-SGD noise multipliers (one defense row each)")
    backdoor_cut_target: float = Field(0.5, gt=0, le=1, description="backdoor success must drop by this fraction")
    max_acc_drop: float = Field(0.01, ge=0, description="allowed clean-accuracy drop (fraction, 0.01 = 1 point)")

    _defs = field_validator("defenses")(classmethod(lambda cls, v: check_names(v)))

    @model_validator(mode="after")
    def _backdoor_is_run(self):
        if self.backdoor not in self.attacks:
            raise ValueError(f"backdoor {self.backdoor!r} must be one of attacks {self.attacks}")
        return self
