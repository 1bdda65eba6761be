"""What every study flow shares: the study context (typed params, seeds, device, paths), the task runner, the
MLflow run and `publish`, the last step of every flow.

A study flow reads as inputs -> tasks -> outcome -> publish:

    ctx = prepare("maze", params_path, root)
    with tracked(ctx) as run:
        ... = some_task.submit(...)            # every task call is `.submit(...)`, read with `.result()`
        out = outcome.build(ctx.params, ...)   # plain library code: claims, headline, tables, notes, figures
        return publish(ctx, run, out, model=...)
"""

from __future__ import annotations

import importlib
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import BaseModel

from tenfold.components.data import sources
from tenfold.core.config import Common, show_progress
from tenfold.core.errors import TenfoldError
from tenfold.core.outcome import Outcome
from tenfold.core.runtime import atomic_write_json, configure_threads, pick_device
from tenfold.core.seeds import seed_everything, seed_for
from tenfold.registry import DATA_STAGES, Study, flow_entry, get, load_params, stages


@dataclass
class StudyContext:
    study: Study
    common: Common
    params: BaseModel  # the study's own typed section
    seed: int
    device: Any
    root: Path
    uses: dict[str, BaseModel] = field(default_factory=dict)  # other sections the study reads (registry `uses`)
    started: float = field(default_factory=time.time)
    cpu_started: float = field(default_factory=time.process_time)  # this process, all its threads

    @property
    def slug(self) -> str:
        return self.study.slug

    def seed_for(self, *parts: Any) -> int:
        """The seed of one named draw of this study (see `tenfold.core.seeds.seed_for`)."""
        return seed_for(self.common.seed, self.slug, *parts)

    @property
    def progress(self) -> bool:
        """Whether to show progress bars (`common.progress`, `auto` = only on a terminal)."""
        return show_progress(self.common.progress)

    @property
    def data_root(self) -> Path:
        return self.root / self.common.data_root

    @property
    def shared_data(self) -> Path:
        """The shared offline-data folder; locate a source in it with `tenfold.components.data.sources.locate`."""
        return shared_data(self.common, self.root)

    def path(self, kind: str, name: str = "") -> Path:
        """metrics/<slug>.json, results/<slug>.json, or <kind>/<slug>/<name> (plots, models, checkpoints), with
        the parent folder created."""
        if kind in ("metrics", "results"):
            return self.root / kind / f"{self.slug}.json"
        p = self.root / kind / self.slug / name
        (p.parent if name else p).mkdir(parents=True, exist_ok=True)
        return p


def shared_data(common: Common, root: str | Path = ".") -> Path:
    """The shared offline-data folder ($TENFOLD_SHARED_DATA, else common.shared_data against the project root)."""
    return sources.shared_root(common.shared_data, root)


def prepare(slug: str, params_path: str | Path = "params.yaml", root: str | Path = ".") -> StudyContext:
    """Validate params (the whole file), set threads, seed, pick the device. Fails before any compute."""
    study = get(slug)
    sections = load_params(params_path, [slug])
    common = sections["common"]
    configure_threads(common.threads)
    seed = seed_for(common.seed, slug)  # the study's base seed; named draws use ctx.seed_for(...)
    seed_everything(seed)
    return StudyContext(
        study,
        common,
        sections[slug],
        seed,
        pick_device(common.device),
        Path(root),
        {u: sections[u] for u in study.uses},
    )


@contextmanager
def tracked(ctx: StudyContext, stage: str | None = None, tags: dict | None = None) -> Iterator:
    """The study's MLflow run: lineage tags, flattened params (its own section, `common` and the ones it uses)."""
    from tasks.track import study_run

    sections = {"common": ctx.common, ctx.slug: ctx.params, **ctx.uses}
    with study_run(
        ctx.slug,
        sections,
        stage=stage or ctx.slug,
        uri=ctx.common.mlflow_uri,
        lock=ctx.root / "dvc.lock",
        extra_tags={"device": str(ctx.device), **(tags or {})},
    ) as run:
        yield run


class DaskUnavailable(TenfoldError):
    """The Dask scheduler a flow should fan out to does not answer."""


def dask_address(common: Common) -> str | None:
    """The Dask scheduler to fan out to: $TENFOLD_DASK_ADDRESS (written to .cluster/env by scripts/cluster.sh) wins
    over `common.dask_address` (used when `common.task_runner: dask`); None = no external cluster."""
    return os.environ.get("TENFOLD_DASK_ADDRESS") or (common.dask_address if common.task_runner == "dask" else None)


def check_dask(address: str, timeout: float = 3.0) -> None:
    """Fail in seconds, naming the scheduler, when nothing listens at `address` (tcp://host:port)."""
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except (OSError, ValueError) as e:
        raise DaskUnavailable(
            f"Dask scheduler at {address} is not answering ({e}): start it (`dask scheduler`, or "
            "`scripts/cluster.sh up`) or fix common.dask_address / TENFOLD_DASK_ADDRESS"
        ) from None


def task_runner(common: Common):
    """Threads by default; `common.task_runner: dask` fans out to a Dask cluster (address or a local one);
    $TENFOLD_DASK_ADDRESS sends every flow to that cluster."""
    address = dask_address(common)
    if address:
        from prefect_dask import DaskTaskRunner

        check_dask(address)
        return DaskTaskRunner(address=address)
    if common.task_runner == "dask":
        from prefect_dask import DaskTaskRunner

        return DaskTaskRunner(
            cluster_kwargs={
                "n_workers": common.max_workers,
                "threads_per_worker": 1,
                "processes": True,
                "dashboard_address": None,
            }
        )
    return ThreadPoolTaskRunner(max_workers=common.max_workers)


def available_targets(params_path: str | Path = "params.yaml") -> list[str]:
    """What `run all` runs, in order: the shared data builds, then the DVC stages of the studies whose params
    section is present."""
    from tenfold.core.config import read_yaml

    present = set(read_yaml(params_path))
    studies = [stage for stage, study in stages().items() if study.slug in present]
    return [*(d for d in DATA_STAGES if _needed(d, studies)), *studies]


def _needed(data_stage: str, study_stages: list[str]) -> bool:
    """Whether one of `study_stages` depends (in the project's dvc.yaml) on an output of `data_stage`."""
    import yaml

    dvc = Path(__file__).resolve().parents[1] / "dvc.yaml"
    if not dvc.exists():
        return True
    spec = yaml.safe_load(dvc.read_text())["stages"]
    outs = {next(iter(o)) if isinstance(o, dict) else o for o in spec.get(data_stage, {}).get("outs", [])}
    return any(outs & set(spec.get(s, {}).get("deps", [])) for s in study_stages)


def flow_for(stage: str):
    """The Prefect flow that runs DVC stage `stage` (from the study registry's "module:attribute")."""
    module, attr = flow_entry(stage).split(":")
    return getattr(importlib.import_module(module), attr)


def run_flow(flow_obj, params_path: str | Path = "params.yaml", **kwargs):
    """Run a flow with the task runner named in params (`common.task_runner`)."""
    common = load_params(params_path, [])["common"]
    return flow_obj.with_options(task_runner=task_runner(common))(params_path=str(params_path), **kwargs)


def publish(
    ctx: StudyContext,
    run,
    out: Outcome,
    model=None,
    model_name: str | None = None,
    input_example=None,
    model_description: str = "",
    log=None,
) -> dict:
    """The end of every study flow.

    Writes results/<slug>.json and metrics/<slug>.json first (atomically; nothing measured is lost if tracking
    fails afterwards), then registers `model` (alias moved only if `out.passed`), attaches both files and
    plots/<slug>/ to the MLflow run, and logs the headline numbers, one 0/1 metric per claim and the wall time.
    Returns the results dict."""
    run_info = {"mlflow_run_id": run.run_id, "device": str(ctx.device)}
    results = out.results(ctx.slug, ctx.study.arxiv, ctx.study.title, run_info)
    atomic_write_json(ctx.path("metrics"), out.metrics())
    atomic_write_json(ctx.path("results"), results)
    if model is not None:
        reg = run.log_model(
            model,
            model_name or f"{ctx.slug}_model",
            input_example=input_example,
            passed=out.passed,
            description=model_description,
        )
        run_info.update(registered_model=f"{reg['name']} v{reg['version']}", alias_moved=out.passed)
    run_info["wall_seconds"] = round(time.time() - ctx.started, 1)
    run_info["cpu_seconds"] = round(time.process_time() - ctx.cpu_started, 1)  # tasks on Dask workers not counted
    results["run"] = run_info
    atomic_write_json(ctx.path("results"), results)
    for kind in ("metrics", "results"):
        run.log_artifact(ctx.path(kind))
    plots = ctx.root / "plots" / ctx.slug
    if plots.exists():
        run.log_artifact(plots, "plots")
    values = {k: float(v) for k, v in out.headline.items() if v is not None}
    values.update({f"claim_{c.id}": float(bool(c.holds)) for c in out.claims})
    values["wall_seconds"], values["cpu_seconds"] = run_info["wall_seconds"], run_info["cpu_seconds"]
    run.log_metrics(values)
    if log is not None:
        log.info("%s: %s", ctx.slug, {c.id: (c.measured, c.holds) for c in out.claims})
    return results
