"""No defense: the victim is trained normally (the baseline row of every benchmark)."""

from __future__ import annotations

from tenfold.components.defenses.registry import register_defense
from tenfold.components.victims import train


class NoDefense:
    def fit(self, model, x, y, tcfg, device, seed):
        return train(model, x, y, tcfg, device, seed), {}


@register_defense("none", stage="none", kind="none", needs_clean_data=False, reports="nothing", paper="-")
def build_none(cfg, num_classes: int) -> NoDefense:
    return NoDefense()
