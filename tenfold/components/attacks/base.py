"""What every attack shares: the threat setup chosen by seed, the crafted `Poison` (saved as a DVC output and
reused by every defense), the l_inf projection, differentiable augmentation and the trigger patch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from tenfold.core.runtime import atomic_savez


@dataclass
class Setup:
    """One benchmark trial, fixed by seed: a target test image (targeted attacks) or a target class (backdoors).

    targeted: `target_index` is a test image of class `target_true`; success = the victim predicts `adv_class`.
    backdoor: triggered test images of `source_class` (if >= 0; the attack sets it to -1 when its trigger is meant
    for every class) or of every class != `adv_class` should become `adv_class`.
    """

    seed: int
    adv_class: int
    target_index: int = -1
    target_true: int = -1
    source_class: int = -1


def make_setup(goal: str, y_test: np.ndarray, num_classes: int, seed: int) -> Setup:
    rng = np.random.default_rng(seed)
    if goal == "targeted":
        t = int(rng.integers(len(y_test)))
        true = int(y_test[t])
        adv = int((true + 1 + rng.integers(num_classes - 1)) % num_classes)
        return Setup(seed, adv, t, true)
    adv = int(rng.integers(num_classes))
    src = int((adv + 1 + rng.integers(num_classes - 1)) % num_classes)
    return Setup(seed, adv, source_class=src)


@dataclass
class Poison:
    """A crafted poison: training indices replaced by (`x`, `y`), plus the trigger for backdoors."""

    attack: str
    goal: str
    setup: Setup
    indices: np.ndarray
    x: np.ndarray
    y: np.ndarray
    trigger: np.ndarray | None = None
    info: dict = field(default_factory=dict)

    def apply(self, x_train: np.ndarray, y_train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The poisoned training set (copies; the clean arrays are untouched)."""
        x, y = x_train.copy(), y_train.copy()
        x[self.indices], y[self.indices] = self.x, self.y
        return x, y

    def save(self, path: str | Path) -> Path:
        s = self.setup
        return atomic_savez(
            path,
            indices=self.indices,
            x=self.x,
            y=self.y,
            trigger=self.trigger if self.trigger is not None else np.zeros((0,), np.float32),
            setup=np.array([s.seed, s.adv_class, s.target_index, s.target_true, s.source_class]),
            meta=np.array([self.attack, self.goal]),
        )

    @staticmethod
    def load(path: str | Path) -> Poison:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"{path}: crafted poison missing; run the craft_poisons stage first")
        with np.load(path, allow_pickle=False) as z:
            trig = z["trigger"]
            return Poison(
                str(z["meta"][0]),
                str(z["meta"][1]),
                Setup(*[int(v) for v in z["setup"]]),
                z["indices"],
                z["x"],
                z["y"],
                trig if trig.size else None,
            )


def project_linf(x_adv: torch.Tensor, x_clean: torch.Tensor, eps: float) -> torch.Tensor:
    """Project onto the l_inf ball of radius eps around x_clean and the [0, 1] image box (pixel space)."""
    return torch.min(torch.max(x_adv, x_clean - eps), x_clean + eps).clamp(0, 1)


def diff_augment(x: torch.Tensor, gen: torch.Generator, max_shift: float = 0.125, flip: bool = False) -> torch.Tensor:
    """Differentiable augmentation inside the crafting loss (lab's `paugment`): a random translation of up to
    `max_shift` of the side (±4 px at 32 px) by bilinear `grid_sample`, and optionally a horizontal flip."""
    n = x.shape[0]
    shift = (torch.rand(n, 2, generator=gen) * 2 - 1) * max_shift * 2  # grid coordinates span [-1, 1]
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = 1
    theta[:, 1, 1] = 1
    if flip:
        theta[:, 0, 0] = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta.to(x), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, padding_mode="zeros", align_corners=False)


def random_trigger(channels: int, size: int, seed: int) -> np.ndarray:
    """A fixed random binary patch (the lab's Bernoulli patch), shape (C, size, size)."""
    rng = np.random.default_rng(seed)
    return (rng.random((channels, size, size)) < 0.5).astype(np.float32)


def stamp(x: np.ndarray | torch.Tensor, trigger: np.ndarray) -> np.ndarray | torch.Tensor:
    """Paste the trigger (opaque) into the bottom-right corner of every image, flush with the border, as the lab's
    `patch` recipe does (`witch_patch.py`: the patch replaces the last rows and columns)."""
    s = trigger.shape[-1]
    out = x.clone() if isinstance(x, torch.Tensor) else x.copy()
    trig = torch.as_tensor(trigger).to(out) if isinstance(out, torch.Tensor) else trigger
    out[..., -s:, -s:] = trig
    return out


def sample_poison_indices(
    y_train: np.ndarray, n: int, seed: int, cls: int | None = None, exclude_cls: int | None = None
) -> np.ndarray:
    """`n` training indices chosen by seed, from class `cls` or from every class but `exclude_cls`."""
    mask = np.ones(len(y_train), bool)
    if cls is not None:
        mask &= y_train == cls
    if exclude_cls is not None:
        mask &= y_train != exclude_cls
    pool = np.flatnonzero(mask)
    if n > len(pool):
        raise ValueError(f"budget asks for {n} poisons but only {len(pool)} eligible training images")
    return np.sort(np.random.default_rng(seed).choice(pool, n, replace=False))


def craft_steps(cfg) -> int:
    """How many times an attack with (per-attack) config `cfg` calls `CraftContext.tick`: iterations (or steps)
    times restarts; 0 for attacks that craft in one pass (label flips, patches)."""
    n = getattr(cfg, "iters", None) or getattr(cfg, "steps", None) or 0
    return int(n) * int(getattr(cfg, "restarts", 1) or 1)


@dataclass
class CraftContext:
    """Everything an attack may use: data, the attacker's surrogate (trained on clean data), device, setup."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    surrogate: torch.nn.Module
    device: torch.device
    setup: Setup
    n_poison: int
    eps: float
    patch_size: int
    seed: int
    # adaptive attacks: the defense's batch mixing (x, y, gen) -> (x_mixed, soft labels) inside the crafting loss
    mix: object = None
    # the victims' training augmentation flips images (CIFAR-10): the differentiable augmentation flips too
    flip: bool = False
    # the per-channel std of the victims' input normalisation: the lab's signAdam step is `tau` in normalised units
    input_std: tuple[float, ...] | None = None
    # called with 1 after every crafting iteration (a progress bar of the caller); see `craft_steps` for the total
    step: Callable[[int], None] | None = None

    def tick(self) -> None:
        if self.step is not None:
            self.step(1)
