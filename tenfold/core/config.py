"""Typed, validated params: `params.yaml` -> one pydantic model per section, before any compute.

Every section forbids unknown keys, so a typo fails with a message naming the key, e.g.
``params.yaml: maze.train.epochs: Input should be greater than 0``. Each study owns its params model; the study
registry (`tenfold.registry`) maps sections to models and loads a whole file.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tenfold.core.errors import TenfoldError


class Strict(BaseModel):
    """Base for every params model: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


class Common(Strict):
    seed: int = Field(0, ge=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int | None = Field(
        1,
        ge=1,
        description="torch intra-op threads per process (1: parallel tasks do not "
        "oversubscribe the cores); null = torch default",
    )
    data_root: str = "data"
    shared_data: str = "../shared/data"
    mlflow_uri: str = "sqlite:///mlflow.db"
    nproc: int = Field(
        1,
        ge=1,
        description="processes per training job: > 1 trains data-parallel under torchrun "
        "(gloo on CPU, NCCL on GPU) where a study supports it (maze, depth)",
    )
    task_runner: Literal["thread", "dask"] = "thread"
    max_workers: int = Field(2, ge=1)
    dask_address: str | None = None
    allow_download: bool = Field(False, description="let loaders download data (torchvision) when it is not on disk")
    progress: bool | Literal["auto"] = Field(
        "auto", description="progress bars: auto = only in a terminal (off under CI and when DVC pipes the output)"
    )


def show_progress(setting: bool | str) -> bool:
    """Resolve `common.progress`: `auto` shows bars only on an interactive terminal, never under CI, and not when
    the environment switches tqdm off (TQDM_DISABLE); `true`/`false` decide regardless."""
    import os
    import sys

    if setting == "auto":
        off = os.environ.get("TQDM_DISABLE", "").strip().lower() not in ("", "0", "false", "no")
        return sys.stderr.isatty() and not os.environ.get("CI") and not off
    return bool(setting)


class ParamsError(TenfoldError, ValueError):
    """Raised for malformed params; the message names the offending key."""


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
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ParamsError(f"{path}: not valid YAML{where}: {problem}") from None
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: top level must be a mapping of sections, got {type(raw).__name__}")
    return raw


def validate_section(
    section: str, raw: Any, models: Mapping[str, type[BaseModel]], source: str = "params.yaml"
) -> BaseModel:
    """Validate one section with its model from `models` (section -> model; see `tenfold.registry.models`)."""
    if section not in models:
        raise ParamsError(f"{source}: {section}: unknown section (known: {', '.join(models)})")
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: {section}: must be a mapping, got {type(raw).__name__}")
    try:
        return models[section].model_validate(raw)
    except ValidationError as e:
        raise ParamsError(_format(e, section, source)) from None


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


def unflatten(dotted: Mapping[str, Any]) -> dict[str, Any]:
    """The inverse of `flatten`: {"section.key": value} -> {"section": {"key": value}}."""
    tree: dict[str, Any] = {}
    for key, value in dotted.items():
        *parents, leaf = key.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def overlay_yaml_text(text: str, overlay: dict) -> str:
    """`text` (a YAML mapping) with `overlay` deep-merged into it, keeping its comments, key order and layout
    (ruamel round trip): applying a profile never rewrites a user's params file lossily."""
    import io

    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    rt = YAML()
    rt.preserve_quotes = True
    rt.width = 4096
    rt.indent(mapping=2, sequence=4, offset=2)
    rt.representer.add_representer(type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null"))
    doc = rt.load(text)

    def merge(node, over):
        for k, v in over.items():
            old = node.get(k)
            if isinstance(v, dict) and isinstance(old, dict):
                merge(old, v)
            elif isinstance(v, list) and isinstance(old, list) and v:
                old[:] = copy.deepcopy(v)  # same node: keeps its flow/block style and comments
            elif isinstance(v, (list, dict)) and not v:
                # an emptied block collection keeps its block style and dumps as a broken `[]` line: a new, flow-style
                # node (`key: []`; the comment after the key stays with the key)
                empty = CommentedSeq() if isinstance(v, list) else CommentedMap()
                empty.fa.set_flow_style()
                node[k] = empty
            else:
                node[k] = copy.deepcopy(v)

    merge(doc, overlay or {})
    out = io.StringIO()
    rt.dump(doc, out)
    text_out = out.getvalue()
    # never hand back a file that reads differently from the merge it stands for (a params file is rewritten with it)
    if yaml.safe_load(text_out) != deep_merge(yaml.safe_load(text) or {}, overlay or {}):
        raise TenfoldError("could not write the merged params while keeping the file's layout; nothing was written")
    return text_out
