"""Label flipping (dirty-label availability poisoning): a budgeted fraction of training labels is flipped to a
random other class; the images are untouched. Success is measured as the drop in clean accuracy."""

from __future__ import annotations

import numpy as np

from tenfold.components.attacks.base import CraftContext, Poison, sample_poison_indices
from tenfold.components.attacks.registry import register_attack


@register_attack(
    "label_flip",
    goal="availability",
    label="dirty-label",
    knowledge="from-scratch",
    mechanism="label flipping",
    norm="label",
    victim="from-scratch",
    paper="survey arXiv:2012.10544, Sec. 2 (label flipping)",
)
def craft(ctx: CraftContext, cfg) -> Poison:
    """`cfg`: fraction (of the training set, independent of the image-poison budget)."""
    n = int(round(cfg.fraction * len(ctx.y_train)))
    idx = sample_poison_indices(ctx.y_train, n, ctx.seed)
    rng = np.random.default_rng(ctx.seed)
    y = (ctx.y_train[idx] + rng.integers(1, ctx.num_classes, len(idx))) % ctx.num_classes
    return Poison("label_flip", "availability", ctx.setup, idx, ctx.x_train[idx].copy(), y.astype(ctx.y_train.dtype))
