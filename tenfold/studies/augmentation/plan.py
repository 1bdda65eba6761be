"""What the augmentation stage runs: its defense rows and the crafted poisons they are tried against."""

from __future__ import annotations

from typing import Any

from tenfold.studies.augmentation.outcome import CURVE_DEFENSES, curve_label, dp_label
from tenfold.studies.augmentation.params import AugmentationParams


def defense_plan(p: AugmentationParams, dpsgd: Any) -> list[tuple[str, str, Any]]:
    """(label, registered defense, params override or None) of every defense row: `augmentation.defenses` with
    their `security.defense` params, then DP-SGD (`dpsgd`: the `security.defense.dpsgd` params) at each noise
    multiplier of `augmentation.dp_noise`."""
    rows: list[tuple[str, str, Any]] = [(d, d, None) for d in p.defenses]
    rows += [(dp_label(n), "dpsgd", dpsgd.model_copy(update={"noise_multiplier": n})) for n in p.dp_noise]
    return rows


def poisons(p: AugmentationParams, crafted: list[dict]) -> list[dict]:
    """The crafted poisons (manifest entries) of `augmentation.attacks`: the first `augmentation.setups` setups of
    a backdoor, the first `augmentation.targeted_setups` of a targeted attack (gradient matching); a clear error if
    an attack was not crafted."""
    have = {e["attack"] for e in crafted}
    missing = [a for a in p.attacks if a not in have]
    if missing:
        raise ValueError(
            f"augmentation.attacks: {missing} not crafted; add them to security.craft.attacks / "
            f"security.craft.adaptive and rerun craft_poisons (crafted: {sorted(have)})"
        )

    def keep(e):
        n = p.targeted_setups if e["attack"].split("+")[0] == "gradient_matching" else p.setups
        return e.get("trial", 0) < n

    return [e for e in crafted if e["attack"] in p.attacks and keep(e)]


COST = {"maxup": 3.0, "dpsgd": 4.0}  # CPU cost of a defense's victim relative to plain training (measured)


def schedule(entries: list[dict], rows: list[tuple[str, str, Any]]) -> list[tuple[dict, tuple[str, str, Any]]]:
    """Every (poison, defense row) pair, the most expensive victims first (MaxUp, DP-SGD), so that the two workers
    of the thread runner finish together; the order of the results does not depend on it."""
    pairs = [(e, r) for e in entries for r in rows]
    return sorted(pairs, key=lambda pr: -COST.get(pr[1][1], 1.0))


def curve(p: AugmentationParams, main_epochs: int) -> list[tuple[str, str, int]]:
    """(label, defense, victim epochs) of the training-length curve (`augmentation.epoch_curve`, the main length
    left out), longest first: the slowest victims start first."""
    eps = sorted({e for e in p.epoch_curve if e != main_epochs}, reverse=True)
    return [(curve_label(d, e), d, e) for e in eps for d in CURVE_DEFENSES]
