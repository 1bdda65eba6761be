"""Typed, validated params: `params.yaml` -> one pydantic model per section, before any compute.

Every section forbids unknown keys, so a typo fails with a message naming the key, e.g.
``params.yaml: maze.train.epochs: Input should be greater than 0``.
Study sections are registered in `SECTIONS` by import path so each study owns its own params model.
"""
from __future__ import annotations

import copy
import importlib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class Strict(BaseModel):
    """Base for every params model: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


class Common(Strict):
    seed: int = Field(0, ge=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int | None = Field(None, ge=1, description="torch intra-op threads; null = torch default")
    data_root: str = "data"
    shared_data: str = "../shared/data"
    mlflow_uri: str = "sqlite:///mlflow.db"
    task_runner: Literal["thread", "dask"] = "thread"
    max_workers: int = Field(2, ge=1)
    dask_address: str | None = None
    progress: bool = True


# slug -> "module:Class"; each study owns its params model.
SECTIONS: dict[str, str] = {
    "maze": "tenfold.mazes.params:MazeParams",
    "depth": "tenfold.depth.params:DepthParams",
    "smoothing": "tenfold.certify.params:SmoothingParams",
    "gradinit": "tenfold.gradinit.params:GradInitParams",
    "secure_release": "tenfold.release.params:SecureReleaseParams",
    "minimax": "tenfold.minimax.params:MinimaxParams",
    "fairness": "tenfold.fairness.params:FairnessParams",
    "lowkey": "tenfold.lowkey.params:LowKeyParams",
    "security": "tenfold.security.params:SecurityParams",
    "augmentation": "tenfold.security.params:AugmentationParams",
    "openreview": "tenfold.review.params:OpenReviewParams",
}


class ParamsError(ValueError):
    """Raised for malformed params; the message names the offending key."""


def _model_for(section: str) -> type[BaseModel]:
    mod, cls = SECTIONS[section].split(":")
    return getattr(importlib.import_module(mod), cls)


def _format(err: ValidationError, prefix: str, source: str) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in (prefix, *e["loc"]) if p != "")
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see params.yaml for the allowed keys)"
        lines.append(f"{source}: {loc}: {msg} (got {e.get('input')!r})")
    return "\n".join(lines)


def deep_merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in (override or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"{path}: params file not found")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ParamsError(f"{path}: not valid YAML: {e}") from e
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: top level must be a mapping of sections, got {type(raw).__name__}")
    return raw


def validate_section(section: str, raw: Any, source: str = "params.yaml") -> BaseModel:
    if section == "common":
        model: type[BaseModel] = Common
    elif section in SECTIONS:
        model = _model_for(section)
    else:
        known = ", ".join(["common", *SECTIONS])
        raise ParamsError(f"{source}: {section}: unknown section (known: {known})")
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: {section}: must be a mapping, got {type(raw).__name__}")
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        raise ParamsError(_format(e, section, source)) from None


def load_params(path: str | Path = "params.yaml", sections: list[str] | None = None,
                overrides: dict | None = None) -> dict[str, BaseModel]:
    """Validate the whole file (every section, so a typo anywhere is caught) and return the sections.

    `sections` limits which sections are returned; all present sections are still validated.
    """
    raw = deep_merge(read_yaml(path), overrides or {})
    out = {name: validate_section(name, value, str(path)) for name, value in raw.items()}
    if "common" not in out:
        out["common"] = Common()
    if sections:
        missing = [s for s in sections if s not in out]
        for s in missing:
            out[s] = validate_section(s, {}, str(path))
        return {s: out[s] for s in ["common", *sections]}
    return out


def flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    """Flatten nested params into dotted keys (for MLflow)."""
    if isinstance(d, BaseModel):
        d = d.model_dump()
    out: dict[str, Any] = {}
    if isinstance(d, dict):
        for k, v in d.items():
            out.update(flatten(v, f"{prefix}{k}."))
    else:
        out[prefix.rstrip(".")] = d
    return out


def apply_profile(params_path: str | Path, profile_path: str | Path) -> dict:
    """Deep-merge a profile (e.g. profiles/paper.yaml) into params.yaml, validate, and return the result."""
    merged = deep_merge(read_yaml(params_path), read_yaml(profile_path))
    for name, value in merged.items():
        validate_section(name, value, f"{params_path} + {profile_path}")
    return merged
