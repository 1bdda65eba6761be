"""Typed params of the `smoothing` study (section `smoothing` of params.yaml).

Defaults are the CPU profile; profiles/paper.yaml holds the official code's settings."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from tenfold.core.config import Strict

DistanceName = Literal["l2", "angular", "tv1", "tv2", "lpips"]


class SmoothConfig(Strict):
    """`Smooth` settings (official defaults: n_pred 1e4, n_cert 1e6, n_cntr 30, alpha 0.005, Delta 0.05, 3)."""

    n_pred: int = Field(2000, ge=1, description="samples for the center and, fresh, for the abstain test")
    n_cert: int = Field(3000, ge=1, description="samples for the certificate quantile")
    n_cntr: int = Field(30, ge=1, description="candidate centers of the high-dimensional variant")
    alpha_1: float = Field(0.005, gt=0, lt=1)
    alpha_2: float = Field(0.005, gt=0, lt=1)
    delta: float = Field(0.08, gt=0, lt=0.5, description="Delta of the abstain test and the certificate")
    radius_coeff: float = Field(3.0, ge=1, description="1 + beta, beta = 2 for the median center")
    output_is_hd: bool = False
    batch_size: int = Field(500, ge=1)
    block_elems: int = Field(1 << 22, ge=1, description="values per block of the distance matrix")

    @model_validator(mode="after")
    def _can_certify(self):
        d1 = math.sqrt(math.log(2 / self.alpha_1) / (2 * self.n_pred))
        if d1 > self.delta:
            need = math.ceil(math.log(2 / self.alpha_1) / (2 * self.delta**2))
            raise ValueError(
                f"n_pred={self.n_pred} makes Delta_1={d1:.3f} > delta={self.delta}: every input would "
                f"abstain; use n_pred >= {need} or a larger delta"
            )
        return self


class TrainConfig(Strict):
    """Official: Adam lr 1e-3, batch 1000, 100 epochs, MSE, Gaussian noise of the smoothing sigma."""

    epochs: int = Field(3, ge=1)
    batch_size: int = Field(100, ge=1)
    lr: float = Field(1e-3, gt=0)
    n_train: int | None = Field(None, ge=1, description="training images (null = all)")


class _Grid(Strict):
    enabled: bool = True
    sigmas: list[float] = [0.1, 0.25]
    claim_sigma: float = Field(0.25, description="the default sigma of the claim; one of `sigmas`")
    eps_in: list[float] = [0.04, 0.08, 0.12, 0.16]
    n_images: int = Field(8, ge=1, description="test inputs certified per (sigma, distance)")

    @field_validator("sigmas", "eps_in")
    @classmethod
    def _positive(cls, v):
        if not v or any(s <= 0 for s in v):
            raise ValueError("must be a non-empty list of positive numbers")
        return sorted(set(v))

    @model_validator(mode="after")
    def _claim_in_grid(self):
        if self.claim_sigma not in self.sigmas:
            raise ValueError(f"claim_sigma {self.claim_sigma} is not one of sigmas {self.sigmas}")
        return self


class AutoencoderTask(_Grid):
    """(a) dimensionality reduction with a conv autoencoder trained with Gaussian noise."""

    distances: list[DistanceName] = ["l2"]
    latent_dim: int = Field(32, ge=1)
    widths: tuple[int, int, int] = (8, 16, 32)
    train: TrainConfig = TrainConfig()


class ReconstructorTask(_Grid):
    """(b) compressed sensing: y = x A with A ~ N(0, 1/m) (seeded), noise on y, a conv net reconstructs x."""

    distances: list[DistanceName] = ["l2"]
    measurements: int = Field(256, ge=1, description="m, rows of y")
    widths: tuple[int, int, int] = (8, 16, 32)
    train: TrainConfig = TrainConfig()


class FacesTask(_Grid):
    """(c) face boxes on the AT&T faces, distance 1 - IoU; sigma and eps_in in [0, 1] pixel units (x255)."""

    detector: Literal["haar", "mtcnn"] = "haar"
    min_size: int = Field(40, ge=8, description="smallest face in pixels")
    downscale: float = Field(1.5, ge=1.0, description="Haar cascade only: detect on an image this much smaller")
    sigmas: list[float] = [0.05]
    claim_sigma: float = 0.05
    eps_in: list[float] = [0.01, 0.04, 0.07]
    n_images: int = Field(5, ge=1)
    n_pred: int | None = Field(1000, ge=1, description="override smooth.n_pred for this (slow) base function")
    n_cert: int | None = Field(1000, ge=1)


class SmoothingParams(Strict):
    dataset: Literal["mnist5k", "mnist", "cifar10"] = "mnist5k"
    smooth: SmoothConfig = SmoothConfig()
    autoencoder: AutoencoderTask = AutoencoderTask()
    reconstructor: ReconstructorTask = ReconstructorTask()
    faces: FacesTask = FacesTask()
    bn_ablation_images: int = Field(
        4,
        ge=0,
        description="inputs certified again with batch norm in train mode (the official code's behaviour); 0 = skip",
    )
    claim_min_certified: float = Field(0.5, ge=0, le=1)

    def smooth_for(self, task: str) -> SmoothConfig:
        """The `Smooth` settings of a task: `smooth` with the task's n_pred/n_cert overrides (faces only)."""
        over = {}
        if task == "faces":
            over = {k: v for k, v in (("n_pred", self.faces.n_pred), ("n_cert", self.faces.n_cert)) if v}
        return SmoothConfig.model_validate({**self.smooth.model_dump(), **over})

    @model_validator(mode="after")
    def _faces_can_certify(self):
        try:
            self.smooth_for("faces")
        except ValidationError as e:
            raise ValueError(f"faces.n_pred/n_cert with smooth: {e.errors()[0]['msg']}") from None
        return self
