"""Typed params of the `maze` study (section `maze` of params.yaml)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from tenfold.core.config import Strict


def _odd(v: int) -> int:
    if v < 3 or v % 2 == 0:
        raise ValueError(f"maze sizes must be odd and >= 3, got {v}")
    return v


class MazeData(Strict):
    train_size: int = 9
    train_count: int = Field(6000, ge=1)
    test_sizes: list[int] = [9, 13, 17]
    test_count: int = Field(400, ge=1)
    scale: Literal[1, 2] = Field(
        1, description="x2 = easy-to-hard-data layout (side 2s+6); x1 = one pixel per grid cell"
    )

    @field_validator("train_size")
    @classmethod
    def _odd_train(cls, v):
        return _odd(v)

    @field_validator("test_sizes")
    @classmethod
    def _odd_tests(cls, v):
        if not v:
            raise ValueError("at least one test size")
        return sorted({_odd(s) for s in v})


class MazeModel(Strict):
    width: int = Field(32, ge=1)
    train_iters: int = Field(10, ge=1, description="iterations during training")
    recall: bool = True
    init: Literal["default", "kaiming_zero_residual"] = "kaiming_zero_residual"


class MazeTrain(Strict):
    epochs: int = Field(6, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(2e-3, gt=0)
    weight_decay: float = Field(2e-4, ge=0)
    warmup_epochs: float = Field(0.2, ge=0)
    alpha: float = Field(0.0, ge=0, le=1, description="progressive-loss weight (0 = plain loss at train_iters)")
    clip: float | None = Field(1.0, gt=0, description="gradient-norm clipping; null = off")
    recurrent_lr_by_iters: bool = False


class MazeCompare(Strict):
    """Recurrent vs feed-forward twin at matched effective depth (trained on the training size)."""

    enabled: bool = True
    iters: list[int] = [8]
    epochs: int = Field(4, ge=1)
    train_count: int = Field(4000, ge=1)


class MazeEval(Strict):
    test_iters: list[int] = [5, 10, 15, 20, 30, 40]
    batch_size: int = Field(256, ge=1)
    examples: int = Field(4, ge=0, description="rendered example mazes in plots/maze/")
    extrapolation_size: int = 13
    extrapolation_target: float = Field(0.9, ge=0, le=1)
    accept_min_train_acc: float = Field(0.5, ge=0, le=1, description="registry alias moves only above this")

    @field_validator("test_iters")
    @classmethod
    def _pos(cls, v):
        if not v or min(v) < 1:
            raise ValueError("test_iters must be a non-empty list of positive counts")
        return sorted(set(v))


class MazeParams(Strict):
    data: MazeData = MazeData()
    model: MazeModel = MazeModel()
    train: MazeTrain = MazeTrain()
    compare: MazeCompare = MazeCompare()
    eval: MazeEval = MazeEval()

    @model_validator(mode="after")
    def _consistent(self):
        if self.eval.extrapolation_size not in self.data.test_sizes:
            raise ValueError(f"eval.extrapolation_size {self.eval.extrapolation_size} must be one of data.test_sizes")
        return self
