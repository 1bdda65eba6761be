"""Typed params of the `augmentation` study (it reuses the poisons, data and victims of `security`)."""

from __future__ import annotations

from pydantic import Field, field_validator

from tenfold.components.defenses.names import check_names
from tenfold.core.config import Strict


class AugmentationParams(Strict):
    """Section `augmentation`: defenses x attacks of arXiv:2011.09527, reusing the crafted poisons of `security`."""

    attacks: list[str] = ["badnets", "gradient_matching", "gradient_matching+cutmix"]
    defenses: list[str] = ["none", "mixup", "cutmix", "cutout", "maxup", "batch_clip_noise"]
    dp_noise: list[float] = Field([0.5, 1.5], description="DP-SGD noise multipliers (one defense row each)")
    backdoor_cut_target: float = Field(0.5, gt=0, le=1, description="backdoor success must drop by this fraction")
    max_acc_drop: float = Field(0.01, ge=0, description="allowed clean-accuracy drop (fraction, 0.01 = 1 point)")

    _defs = field_validator("defenses")(classmethod(lambda cls, v: check_names(v)))
