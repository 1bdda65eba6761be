"""Typed params of the `lowkey` study (section `lowkey` of params.yaml)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from tenfold.core.config import Strict


class LowKeyData(Strict):
    """AT&T faces: the first `train_subjects` identities train the surrogates, the rest are evaluated."""

    train_subjects: int = Field(20, ge=2, le=38, description="subjects 1..k train surrogates; k+1..40 evaluate")
    eval_subjects: int | None = Field(None, ge=2, description="cap on evaluation subjects; null = all remaining")
    gallery_number: int = Field(1, ge=1, le=10, description="image number used as the gallery image")
    probes_per_subject: int = Field(9, ge=1, le=9)


class LowKeyAlign(Strict):
    crop_size: int = Field(48, ge=16, description="side of the aligned crop fed to the surrogates (paper: 112)")
    min_face_size: int = Field(20, ge=8, description="MTCNN minimum face size in pixels")


class Surrogate(Strict):
    name: str
    backbone: Literal["resnet", "vgg", "mobilenet"]
    head: Literal["arcface", "cosface"]


class LowKeyTrain(Strict):
    epochs: int = Field(30, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(2e-3, gt=0)
    weight_decay: float = Field(5e-4, ge=0)
    embedding_dim: int = Field(128, ge=8)
    width: int = Field(16, ge=4, description="channels of the first stage of every backbone")
    scale: float = Field(16.0, gt=0, description="ArcFace/CosFace logit scale s")
    arcface_margin: float = Field(0.3, ge=0, lt=1.5, description="additive angular margin m (paper models: 0.5)")
    cosface_margin: float = Field(0.25, ge=0, lt=1, description="additive cosine margin m (paper models: 0.35)")
    jitter: float = Field(0.06, ge=0, le=0.3, description="random shift/scale of the alignment during training")


class LowKeyAttack(Strict):
    """Signed gradient ascent as in the released lowkey_attack.py (50 steps); the CPU default steps with lr 0.002
    on a Gaussian-smoothed perturbation (smooth_sigma 2); the release itself is lr 0.0025, smooth_sigma 0."""

    n_iters: int = Field(50, ge=1)
    lr: float = Field(0.002, gt=0, description="signed step size (release: 0.0025)")
    init_noise: float = Field(0.005, ge=0, description="uniform start noise +-init_noise")
    n_starts: int = Field(1, ge=1)
    c_sim: float = Field(0.05, ge=0, description="weight of the perceptual penalty")
    perceptual: Literal["ssim"] = Field("ssim", description="LPIPS weights are not available offline: 1-SSIM")
    blur_kernel: int = Field(5, ge=1, description="Gaussian smoothing copies (paper: 7 at 112 px)")
    blur_sigma: float = Field(1.3, gt=0, description="paper: 3 at 112 px; scaled to the crop size")
    smooth_sigma: float = Field(
        2.0,
        ge=0,
        description="Gaussian smoothing (px, full image) of the perturbation; 0 = per-pixel steps as in the release",
    )
    eps: float = Field(0.0, ge=0, description="L-inf bound on the (unsmoothed) perturbation; 0 = none (release)")
    warp: bool = Field(True, description="detection+alignment inside the loop (differentiable warp)")
    batch_size: int = Field(64, ge=1)


class LowKeyEval(Strict):
    ranks: list[int] = [1, 5]
    heldout: Surrogate = Surrogate(name="mobilenet_arcface", backbone="mobilenet", head="arcface")
    examples: int = Field(6, ge=0, description="before/after pairs in the example figure")
    dlib_upsample: int = Field(1, ge=0, description="upsampling of dlib's HOG detector")
    target_dlib_rank1: float = Field(0.10, ge=0, le=1)
    target_ssim: float = Field(0.85, ge=0, le=1)
    target_heldout_rank1: float = Field(0.10, ge=0, le=1)


class SweepPoint(Strict):
    """Overrides of `attack` for one point of the rank-1 vs SSIM trade-off."""

    n_iters: int | None = Field(None, ge=1)
    lr: float | None = Field(None, gt=0)
    c_sim: float | None = Field(None, ge=0)
    smooth_sigma: float | None = Field(None, ge=0)
    blur_sigma: float | None = Field(None, gt=0)


class LowKeySweep(Strict):
    """Attack settings evaluated on a probe subset (dlib rank-1 vs SSIM); empty `points` = no sweep."""

    probes_per_subject: int = Field(1, ge=1, le=9, description="first probes of each evaluated subject")
    points: list[SweepPoint] = Field(
        default_factory=lambda: [SweepPoint(smooth_sigma=0.0, lr=0.0025), SweepPoint(lr=0.005), SweepPoint(lr=0.01)],
        description="the release's per-pixel steps, then larger steps",
    )


class LowKeyWeb(Strict):
    max_bytes: int = Field(8_000_000, ge=1024, description="uploads above this are refused (HTTP 413)")
    max_side: int = Field(1024, ge=64, description="longer image side processed; larger photos are downscaled")
    port: int = Field(8765, ge=1, le=65535)


class LowKeyParams(Strict):
    data: LowKeyData = LowKeyData()
    align: LowKeyAlign = LowKeyAlign()
    ensemble: list[Surrogate] = [
        Surrogate(name="resnet_arcface", backbone="resnet", head="arcface"),
        Surrogate(name="resnet_cosface", backbone="resnet", head="cosface"),
        Surrogate(name="vgg_arcface", backbone="vgg", head="arcface"),
        Surrogate(name="vgg_cosface", backbone="vgg", head="cosface"),
    ]
    train: LowKeyTrain = LowKeyTrain()
    attack: LowKeyAttack = LowKeyAttack()
    eval: LowKeyEval = LowKeyEval()
    sweep: LowKeySweep = LowKeySweep()
    web: LowKeyWeb = LowKeyWeb()

    @model_validator(mode="after")
    def _check(self):
        names = [s.name for s in self.ensemble] + [self.eval.heldout.name]
        if not self.ensemble:
            raise ValueError("ensemble: at least one surrogate")
        if len(set(names)) != len(names):
            raise ValueError(f"ensemble/eval.heldout: surrogate names must be unique, got {names}")
        if self.eval.heldout.backbone in {s.backbone for s in self.ensemble}:
            raise ValueError(
                f"eval.heldout.backbone {self.eval.heldout.backbone!r} is in the ensemble: "
                "the held-out model must be an architecture the attack never saw"
            )
        if self.attack.blur_kernel % 2 == 0:
            raise ValueError(f"attack.blur_kernel must be odd, got {self.attack.blur_kernel}")
        return self

    def attack_at(self, point: SweepPoint) -> LowKeyAttack:
        """The attack settings with one sweep point's overrides applied (validated)."""
        return LowKeyAttack(**{**self.attack.model_dump(), **point.model_dump(exclude_none=True)})
