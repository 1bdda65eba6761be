"""Typed params of the `lowkey` study (section `lowkey` of params.yaml)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from tenfold.core.config import Strict

PRETRAINED_NAMES = ("ms1m", "casia")


class LowKeyData(Strict):
    """CelebA crops: evaluation identities (gallery + probes), distractor identities (gallery only), and the
    remaining identities, disjoint from both, which train the surrogates."""

    identities_max: int | None = Field(
        None, ge=4, description="use only the first k identities of the set (by id; null = all 298): the tiny profile"
    )
    eval_identities: int = Field(40, ge=2, description="identities evaluated (each with >= min_photos photos)")
    min_photos: int = Field(10, ge=3, description="photos an evaluation identity must have")
    gallery_per_identity: int = Field(1, ge=1, le=5, description="clean gallery photos per evaluation identity")
    probes_per_identity: int = Field(2, ge=1, le=5, description="probes (filtered) per evaluation identity")
    distractors: int = Field(60, ge=0, description="further identities with one gallery photo each")
    auc_photos: int = Field(6, ge=2, description="clean photos per evaluation identity for the verification AUC")
    train_photos_max: int = Field(15, ge=2, description="photos per training identity for the surrogates")
    train_identities_max: int | None = Field(None, ge=2, description="cap on training identities (null = all)")


class LowKeyAlign(Strict):
    min_face_size: int = Field(
        40,
        ge=8,
        description="MTCNN minimum face size in pixels (MTCNN's default 20 in the paper profile): the CelebA faces "
        "are about 110 px and the AT&T ones about 70, so 40 finds the same faces (191/191 and 199/199 on samples) "
        "2.5x faster, landmarks within 1.5 px (median) of those at 20",
    )


class Surrogate(Strict):
    """A surrogate trained here on the training identities: the MS1M MobileFaceNet's architecture with an
    ArcFace or CosFace head, fine-tuned from the MS1M weights or trained from scratch."""

    name: str
    head: Literal["arcface", "cosface"]
    init: Literal["ms1m", "scratch"]


class LowKeyTrain(Strict):
    epochs: int = Field(1, ge=1, description="fine-tuning epochs (from the MS1M weights)")
    scratch_epochs: int = Field(1, ge=1, description="epochs of the surrogates trained from scratch")
    batch_size: int = Field(32, ge=2, description="training batch (64 through a MobileFaceNet: ~3 GB)")
    lr: float = Field(0.01, gt=0, description="SGD learning rate of the backbone when fine-tuning")
    scratch_lr: float = Field(0.1, gt=0, description="SGD learning rate from scratch")
    head_lr: float = Field(0.1, gt=0, description="SGD learning rate of the new margin head")
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(5e-4, ge=0)
    scale: float = Field(64.0, gt=0, description="ArcFace/CosFace logit scale s (insightface: 64)")
    arcface_margin: float = Field(0.5, ge=0, lt=1.5, description="additive angular margin (ArcFace: 0.5)")
    cosface_margin: float = Field(0.35, ge=0, lt=1, description="additive cosine margin (CosFace: 0.35)")
    jitter: float = Field(0.04, ge=0, le=0.3, description="random shift/scale of the aligned crop in training")
    batches_per_epoch: int | None = Field(None, ge=1, description="cap on batches per epoch (null = all)")


class LowKeyAttack(Strict):
    """Gradient ascent as in the released lowkey_attack.py (signed steps of lr 0.0025, 50 steps, start noise 0.005,
    one start, Gaussian copies kernel 7 / sigma 3 at 112 px, no L-inf ball, c_sim 0.05 on LPIPS); 1 - SSIM replaces
    LPIPS. CPU default: L2-normalised steps, 16 steps and c_sim 1.0 (picked on the trade-off; the release's signed
    steps with c_sim 0.05 are a sweep point)."""

    n_iters: int = Field(16, ge=1, description="steps (release: 50)")
    lr: float = Field(0.0025, gt=0, description="signed step size")
    init_noise: float = Field(0.005, ge=0, description="uniform start noise +-init_noise")
    n_starts: int = Field(1, ge=1)
    c_sim: float = Field(1.0, ge=0, description="weight of the perceptual penalty (1 - SSIM; release: 0.05 on LPIPS)")
    perceptual: Literal["ssim"] = Field("ssim", description="LPIPS weights are not available offline: 1-SSIM")
    blur_kernel: int = Field(7, ge=1, description="Gaussian smoothing copies of every model (release: 7)")
    blur_sigma: float = Field(3.0, gt=0, description="release: 3 at 112 px")
    smooth_sigma: float = Field(0.0, ge=0, description="Gaussian smoothing (px) of the perturbation; 0 = release")
    eps: float = Field(0.0, ge=0, description="L-inf bound on the perturbation; 0 = none (release)")
    eot_shift: float = Field(0.0, ge=0, le=0.2, description="expectation over alignment shifts (+- fraction)")
    eot_scale: float = Field(0.0, ge=0, le=0.2, description="expectation over alignment scale (+- fraction)")
    normalised_features: bool = Field(False, description="distance on L2-normalised embeddings (release: raw)")
    step: Literal["sign", "l2"] = Field(
        "l2",
        description="signed steps (release) or L2-normalised gradient steps with the same per-pixel RMS `lr` "
        "(the change goes where the gradient is large)",
    )
    batch_size: int = Field(20, ge=1, description="photos filtered together (memory: ~0.15 GB per photo)")


class LowKeyModels(Strict):
    """Which recognizers attack and which only judge (names: `ms1m`, `casia` or a surrogate's name)."""

    attack: list[str] = Field(default_factory=lambda: ["ms1m", "ft_arcface"])
    heldout: str = Field("casia", description="the held-out recognizer: never in the attack")


class LowKeyEval(Strict):
    ranks: list[int] = [1, 10]
    first_iters: int = Field(
        16,
        ge=1,
        description="the first operating point: the iterate after this many "
        "steps of the default run (picked on the trade-off)",
    )
    subtle_iters: int = Field(
        7,
        ge=1,
        description="the second (subtle) operating point: this many steps of the default run (picked on the trade-off)",
    )
    examples: int = Field(4, ge=0, description="photos in the example figure (each at both operating points)")
    redetect_min_face_size: int = Field(
        60, ge=8, description="MTCNN minimum face size when the recognizers re-detect the filtered photos"
    )
    dlib_upsample: int = Field(1, ge=0, description="upsampling of dlib's HOG detector")
    bootstrap: int = Field(1000, ge=0, description="bootstrap resamples of probes for the intervals")
    target_dlib_rank1: float = Field(0.10, ge=0, le=1)
    target_ssim: float = Field(0.85, ge=0, le=1)
    target_dlib_rank1_subtle: float = Field(0.35, ge=0, le=1)
    target_ssim_subtle: float = Field(0.93, ge=0, le=1)
    target_heldout_rank1: float = Field(0.10, ge=0, le=1)


class SweepPoint(Strict):
    """Overrides of `attack` for one run of the trade-off (every run is read at each of `sweep.steps`), and
    optionally another attack ensemble (`models`: e.g. one surrogate alone, to compare fine-tuned with from-scratch
    surrogates by what their filters do to the other recognizers)."""

    lr: float | None = Field(None, gt=0)
    c_sim: float | None = Field(None, ge=0)
    smooth_sigma: float | None = Field(None, ge=0)
    eot_shift: float | None = Field(None, ge=0, le=0.2)
    eot_scale: float | None = Field(None, ge=0, le=0.2)
    n_iters: int | None = Field(None, ge=1)
    step: Literal["sign", "l2"] | None = None
    models: list[str] | None = Field(
        None, min_length=1, description="attack ensemble of this run (default: models.attack)"
    )


class LowKeySweep(Strict):
    """The trade-off: the default run read at each of `steps` (on every probe), plus the `points` runs on the
    first `probes_per_identity` probes of each evaluation identity; empty `points` = steps only."""

    steps: list[int] = Field(default_factory=lambda: [4, 7, 12, 16, 28])
    probes_per_identity: int = Field(1, ge=1, le=5)
    max_probes: int | None = Field(20, ge=1, description="cap on the other runs' probes (the first identities)")
    points: list[SweepPoint] = Field(
        default_factory=list,
        description="further runs (CPU default: none; profile cpu-full: the release's sign step and ft_arcface alone)",
    )


class LowKeyAtt(Strict):
    """The second, smaller table: the same filter and judges on the AT&T faces (grey 92x112, 40 subjects); off in
    the CPU default (profile cpu-full)."""

    enabled: bool = False
    subjects: int | None = Field(20, ge=2, description="first k subjects (null = all 40)")
    gallery_number: int = Field(1, ge=1, le=10)
    probes_per_subject: int = Field(1, ge=1, le=9)


class LowKeyWeb(Strict):
    max_bytes: int = Field(8_000_000, ge=1024, description="uploads above this are refused (HTTP 413)")
    max_side: int = Field(1024, ge=64, description="longer image side processed; larger photos are downscaled")
    max_faces: int = Field(8, ge=1, description="faces protected per photo (the largest ones)")
    port: int = Field(8765, ge=1, le=65535)


class LowKeyParams(Strict):
    data: LowKeyData = LowKeyData()
    align: LowKeyAlign = LowKeyAlign()
    surrogates: list[Surrogate] = Field(
        default_factory=lambda: [
            Surrogate(name="ft_arcface", head="arcface", init="ms1m"),
            Surrogate(name="scratch_arcface", head="arcface", init="scratch"),
        ]
    )
    models: LowKeyModels = LowKeyModels()
    train: LowKeyTrain = LowKeyTrain()
    attack: LowKeyAttack = LowKeyAttack()
    eval: LowKeyEval = LowKeyEval()
    sweep: LowKeySweep = LowKeySweep()
    att: LowKeyAtt = LowKeyAtt()
    web: LowKeyWeb = LowKeyWeb()

    @model_validator(mode="after")
    def _check(self):
        names = [s.name for s in self.surrogates]
        if len(set(names)) != len(names) or set(names) & set(PRETRAINED_NAMES):
            raise ValueError(f"surrogates: names must be unique and not {PRETRAINED_NAMES}, got {names}")
        known = {*PRETRAINED_NAMES, *names}
        unknown = [n for n in [*self.models.attack, self.models.heldout] if n not in known]
        if unknown:
            raise ValueError(f"models: unknown recognizer(s) {unknown} (known: {sorted(known)})")
        if not self.models.attack:
            raise ValueError("models.attack: at least one recognizer")
        if self.models.heldout in self.models.attack:
            raise ValueError(
                f"models.heldout {self.models.heldout!r} is in models.attack: the held-out "
                "recognizer must never be attacked"
            )
        for k, pt in enumerate(self.sweep.points):
            bad = [n for n in pt.models or [] if n not in known or n == self.models.heldout]
            if bad:
                raise ValueError(
                    f"sweep.points[{k}].models: {bad} cannot attack (known: {sorted(known)}; the held-out "
                    f"{self.models.heldout!r} never attacks)"
                )
        if self.attack.blur_kernel % 2 == 0:
            raise ValueError(f"attack.blur_kernel must be odd, got {self.attack.blur_kernel}")
        for name in ("first_iters", "subtle_iters"):
            if getattr(self.eval, name) > self.attack.n_iters:
                raise ValueError(
                    f"eval.{name} ({getattr(self.eval, name)}) exceeds attack.n_iters "
                    f"({self.attack.n_iters}): it is an iterate of the default run"
                )
        if 1 not in self.eval.ranks:
            raise ValueError("eval.ranks must include 1 (the claims are rank-1)")
        return self

    def attack_at(self, point: SweepPoint) -> LowKeyAttack:
        """The attack settings with one sweep point's overrides applied (validated)."""
        return LowKeyAttack(**{**self.attack.model_dump(), **point.model_dump(exclude_none=True, exclude={"models"})})

    def attackers_at(self, point: SweepPoint | None = None) -> list[str]:
        """The attack ensemble of a sweep run (the default run's without one)."""
        return list(point.models) if point is not None and point.models else list(self.models.attack)
