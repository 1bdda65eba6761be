"""STRIP (Gao et al., arXiv:1902.06531): test-time backdoor detection. Each input is superimposed (averaged) with
`n` held-out clean images; a trojaned input keeps predicting the target class, so the mean prediction entropy is
low. The threshold is the `frr` quantile of the entropies of clean held-out inputs (false-rejection rate)."""

from __future__ import annotations

import numpy as np
import torch

from tenfold.components.defenses.registry import register_defense


class Strip:
    def __init__(self, n: int, frr: float, seed: int):
        self.n, self.frr, self.seed = n, frr, seed
        self.threshold: float | None = None

    @torch.no_grad()
    def entropy(self, model, x: np.ndarray, pool: np.ndarray, device) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        out = []
        for i in range(len(x)):
            blend = 0.5 * x[i][None] + 0.5 * pool[rng.choice(len(pool), self.n, replace=False)]
            p = torch.softmax(model(torch.as_tensor(blend, dtype=torch.float32).to(device)), 1).cpu().numpy()
            out.append(float(-(p * np.log(p + 1e-12)).sum(1).mean()))
        return np.array(out)

    def calibrate(self, model, clean: np.ndarray, pool: np.ndarray, device) -> float:
        self.threshold = float(np.quantile(self.entropy(model, clean, pool, device), self.frr))
        return self.threshold

    def flag(self, model, x: np.ndarray, pool: np.ndarray, device) -> np.ndarray:
        """True = flagged as trojaned (entropy below the calibrated threshold)."""
        if self.threshold is None:
            raise RuntimeError("STRIP: call calibrate() on clean held-out inputs first")
        return self.entropy(model, x, pool, device) < self.threshold


@register_defense(
    "strip",
    stage="test-time detection",
    kind="detect",
    needs_clean_data=True,
    reports="flagged test inputs (detection rate on triggered, false alarms on clean)",
    paper="STRIP arXiv:1902.06531",
)
def build_strip(cfg, num_classes: int) -> Strip:
    return Strip(cfg.n, cfg.frr, cfg.seed)
