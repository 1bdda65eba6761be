"""Attack success as a rate with its uncertainty: the Wilson score interval of a binomial proportion."""

from __future__ import annotations

import math


def wilson(successes: float, n: float, z: float = 1.96) -> tuple[float, float] | None:
    """The Wilson score interval (default 95%) of `successes` out of `n` trials; None when `n` is 0. Used for the
    targeted success rate over targets and for backdoor success over triggered test images."""
    if n <= 0:
        return None
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def control_rate(controls: list[dict]) -> dict | None:
    """A backdoor's control (`hits` of `n_triggered` triggered inputs that a network which never saw the poisons
    sends to the adversarial class), pooled over setups, with its 95% Wilson interval; None without inputs."""
    k, n = sum(c["hits"] for c in controls), sum(c["n_triggered"] for c in controls)
    ci = wilson(k, n)
    return None if ci is None else {"success": k / n, "success_lo": ci[0], "success_hi": ci[1], "n": n}
