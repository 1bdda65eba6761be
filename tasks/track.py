"""MLflow tracking for every study: one experiment per study, lineage tags, params, metrics, models, registry.

All calls address a run by id through `MlflowClient`, so they are safe from any thread or task runner.
Secrets never reach MLflow: only validated params and the tags below are logged.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from tenfold.core.config import flatten
from tenfold.core.errors import TenfoldError
from tenfold.core.runtime import machine_info
from tenfold.registry import get as get_study

log = logging.getLogger("tenfold.track")
ALIAS = "champion"
_SECRET_WORDS = ("password", "token", "secret", "apikey", "api_key")
# MLflow's client retries a dead server with exponential backoff for minutes by default; bounded here (a few
# seconds per call) unless the environment sets them (scripts/cluster.sh writes the same values to .cluster/env)
HTTP_CLIENT_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
}


class TrackingServerUnavailable(TenfoldError):
    """The MLflow tracking server does not answer; the message names it and its URL."""


def tracking_uri(configured: str) -> str:
    """`MLFLOW_TRACKING_URI` wins over params; a relative sqlite path is resolved against the cwd."""
    return os.environ.get("MLFLOW_TRACKING_URI") or configured


def _is_http(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def _shown(uri: str) -> str:
    """The URI without credentials (safe for messages and logs)."""
    parts = urllib.parse.urlsplit(uri)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def server_problem(uri: str, timeout: float = 3.0) -> str | None:
    """None when the tracking server at an http(s) `uri` answers `GET /health` within `timeout` s, else why not.
    Other URIs (sqlite, databricks, ...) are not checked."""
    if not _is_http(uri):
        return None
    try:
        with urllib.request.urlopen(f"{_shown(uri)}/health", timeout=timeout) as r:
            return None if r.status == 200 else f"HTTP {r.status} from /health"
    except urllib.error.HTTPError as e:
        return f"HTTP {e.code} from /health"
    except (OSError, urllib.error.URLError) as e:
        reason = getattr(e, "reason", e)
        return f"{type(reason).__name__}: {reason}" if not isinstance(reason, str) else reason


def check_tracking_server(uri: str, timeout: float = 3.0) -> None:
    """Fail within `timeout` seconds, naming the service and its URL, when an http(s) tracking server is down."""
    why = server_problem(uri, timeout)
    if why:
        raise TrackingServerUnavailable(
            f"MLflow tracking server at {_shown(uri)} is not answering ({why}): start it (`scripts/cluster.sh up`, "
            "then `source .cluster/env`) or unset MLFLOW_TRACKING_URI to track to common.mlflow_uri"
        )


def _client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


@contextmanager
def _fluent_uri(uri: str):
    """Point MLflow's fluent API at `uri` for a moment. `mlflow.set_tracking_uri` also writes the
    MLFLOW_TRACKING_URI environment variable, which would leak into later runs; restore it afterwards."""
    import mlflow

    before = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = before
            mlflow.set_tracking_uri(before)


def _artifact_root(uri: str) -> str | None:
    """Artifacts beside an embedded sqlite db (`mlartifacts/`); a server decides for itself."""
    if uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///") :]).resolve()
        return (db.parent / "mlartifacts").as_uri()
    return None


def git_commit(cwd: str | Path = ".") -> str:
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return (sha or "unknown") + ("-dirty" if dirty and sha else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _read_yaml(path: Path, tries: int = 5) -> dict:
    """A YAML file another process may be rewriting (DVC writes dvc.lock in place, and `make pipeline` runs
    stages side by side): an unreadable or empty read is retried; {} if it stays so."""
    for k in range(tries):
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError):
            data = None
        if isinstance(data, dict) and data:
            return data
        if k + 1 < tries:
            time.sleep(0.2)
    return {}


def dvc_data_hashes(stage: str, lock: str | Path = "dvc.lock") -> dict[str, str]:
    """md5 of each data dependency of `stage`, as the run about to start reads it.

    A dependency another stage produces (data/cifar10, data/security/poisons, ...) gets that stage's output md5
    from dvc.lock: DVC records it when the producing stage finishes, so it is this run's input even on the first
    run and after the data changed. Other non-code dependencies (dvc.yaml beside dvc.lock lists them) keep the
    md5 this stage's own dvc.lock entry recorded. Empty when there is no dvc.lock yet; .py files are code (the
    git commit tag covers them)."""
    lock = Path(lock)
    if not lock.exists():
        return {}
    locked = _read_yaml(lock).get("stages", {}) or {}
    produced = {
        o["path"]: o["md5"]
        for name, entry in locked.items()
        if name != stage
        for o in (entry or {}).get("outs", [])
        if isinstance(o, dict) and "md5" in o and "path" in o
    }
    own = {d.get("path", ""): d.get("md5") for d in (locked.get(stage) or {}).get("deps", []) if isinstance(d, dict)}
    spec = lock.with_name("dvc.yaml")
    declared = ((_read_yaml(spec).get("stages", {}) or {}).get(stage) or {}).get("deps") if spec.exists() else None
    paths = [d for d in declared if isinstance(d, str)] if declared else list(own)
    out = {}
    for path in paths:
        md5 = produced.get(path) or own.get(path)
        if path.endswith(".py") or not md5:
            continue
        out[path] = md5
    return out


def _safe_params(params: dict[str, Any]) -> dict[str, str]:
    out = {}
    for k, v in params.items():
        if any(w in k.lower() for w in _SECRET_WORDS):
            continue
        s = str(v)
        out[k] = s if len(s) <= 6000 else s[:5997] + "..."
    return out


class StudyRun:
    """Handle on one MLflow run of a study."""

    def __init__(self, client, run_id: str, study: str, uri: str):
        self.client, self.run_id, self.study, self.uri = client, run_id, study, uri

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        for k, v in metrics.items():
            if v is None:
                continue
            self.client.log_metric(self.run_id, k, float(v), step=step or 0)

    def set_tags(self, tags: dict[str, Any]) -> None:
        for k, v in tags.items():
            self.client.set_tag(self.run_id, k, str(v))

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        p = Path(path)
        if p.is_dir():
            self.client.log_artifacts(self.run_id, str(p), artifact_path)
        elif p.exists():
            self.client.log_artifact(self.run_id, str(p), artifact_path)

    def child(self, name: str, tags: dict[str, Any] | None = None) -> str:
        """Open a nested run (e.g. one benchmark cell) carrying this run's lineage tags; returns its id.
        The caller logs to it and calls `client.set_terminated`."""
        parent = self.client.get_run(self.run_id)
        lineage = {
            k: v for k, v in parent.data.tags.items() if not k.startswith("mlflow.") or k == "mlflow.source.git.commit"
        }
        run = self.client.create_run(
            parent.info.experiment_id,
            run_name=name,
            tags={**lineage, "mlflow.parentRunId": self.run_id, **{k: str(v) for k, v in (tags or {}).items()}},
        )
        return run.info.run_id

    def log_dataset(self, name: str, digest: str, source: str, context: str = "training") -> None:
        """Record a data dependency as an MLflow dataset input (lineage in the UI)."""
        from mlflow.data.dataset_source_registry import resolve_dataset_source
        from mlflow.data.meta_dataset import MetaDataset
        from mlflow.entities import DatasetInput, InputTag

        src = resolve_dataset_source(Path(source).resolve().as_uri())
        ds = MetaDataset(source=src, name=name, digest=digest[:36])
        self.client.log_inputs(
            self.run_id,
            datasets=[
                DatasetInput(dataset=ds._to_mlflow_entity(), tags=[InputTag(key="mlflow.data.context", value=context)])
            ],
        )

    def log_model(self, model, name: str, input_example=None, passed: bool = False, description: str = "") -> dict:
        """Log a torch model, register it as `tenfold-<study>` and move the alias only if it passed its check."""
        import mlflow
        import mlflow.pytorch

        reg_name = f"tenfold-{self.study}"
        model = model.cpu().eval()
        common = dict(name=name, pip_requirements=["torch", "tenfold"], registered_model_name=reg_name)
        with _fluent_uri(self.uri), mlflow.start_run(run_id=self.run_id):
            fmt = "pt2"
            try:  # torch.export graph (no pickle) when the model exports with the example (batch >= 2)
                if input_example is None:
                    raise ValueError("no input example")
                info = mlflow.pytorch.log_model(model, input_example=input_example, **common)
            except Exception as e:  # noqa: BLE001 - any export failure falls back to the pickle format
                log.info("torch.export of %s failed (%s); logging with pickle serialization", name, e)
                fmt = "pickle"
                info = mlflow.pytorch.log_model(model, serialization_format="pickle", **common)
        version = str(info.registered_model_version)
        if description:
            self.client.update_model_version(reg_name, version, description=description[:5000])
        self.client.set_model_version_tag(reg_name, version, "passed_check", str(bool(passed)).lower())
        self.client.set_model_version_tag(reg_name, version, "run_id", self.run_id)
        if passed:
            self.client.set_registered_model_alias(reg_name, ALIAS, version)
        self.set_tags(
            {
                "registered_model": reg_name,
                "registered_version": version,
                "model_format": fmt,
                "alias_moved": str(bool(passed)).lower(),
            }
        )
        return {"name": reg_name, "version": version, "alias": ALIAS if passed else None}


@contextmanager
def study_run(
    study: str,
    sections: dict[str, Any],
    stage: str | None = None,
    uri: str = "sqlite:///mlflow.db",
    run_name: str | None = None,
    extra_tags: dict[str, Any] | None = None,
    lock: str | Path = "dvc.lock",
) -> Iterator[StudyRun]:
    """Open an MLflow run for `study` with lineage tags and flattened params; close it FAILED on error."""
    uri = tracking_uri(uri)
    if _is_http(uri):
        for k, v in HTTP_CLIENT_DEFAULTS.items():
            os.environ.setdefault(k, v)
        check_tracking_server(uri)
    client = _client(uri)
    exp = client.get_experiment_by_name(study)
    exp_id = exp.experiment_id if exp else client.create_experiment(study, artifact_location=_artifact_root(uri))
    stage = stage or study
    tags = {
        "study": study,
        "arxiv": get_study(study).arxiv,
        "git_commit": git_commit(),
        "dvc_stage": stage,
        "mlflow.source.git.commit": git_commit(),
        **machine_info(),
        **(extra_tags or {}),
    }
    for path, md5 in dvc_data_hashes(stage, lock).items():
        tags[f"data_md5.{path}"] = md5
    run = client.create_run(exp_id, run_name=run_name or f"{study}", tags={k: str(v) for k, v in tags.items()})
    sr = StudyRun(client, run.info.run_id, study, uri)
    params = {}
    for name, sec in sections.items():
        params.update(flatten(sec, f"{name}."))
    items = list(_safe_params(params).items())
    from mlflow.entities import Param

    for i in range(0, len(items), 100):
        client.log_batch(run.info.run_id, params=[Param(k, v) for k, v in items[i : i + 100]])
    try:
        yield sr
    except BaseException as e:
        why = server_problem(uri, timeout=2.0)
        if why:  # the server went away mid-run: nothing more can be logged; say so, naming it
            raise TrackingServerUnavailable(
                f"MLflow tracking server at {_shown(uri)} stopped answering during run {run.info.run_id} of {study} "
                f"({why}); files written before tracking (results/, metrics/) are kept: rerun the stage once the "
                "server is back to log them"
            ) from e
        try:
            client.set_terminated(run.info.run_id, status="FAILED")
        except Exception as term:  # noqa: BLE001 - keep the original error
            log.warning("could not mark MLflow run %s FAILED: %s", run.info.run_id, term)
        raise
    client.set_terminated(run.info.run_id, status="FINISHED")
