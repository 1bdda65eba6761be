"""What every study flow shares: params, seed and device, the task runner, output paths."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from prefect.task_runners import ThreadPoolTaskRunner

from tenfold.config import Common, load_params
from tenfold.runtime import atomic_write_json, configure_threads, pick_device, seed_everything, study_seed


@dataclass
class StudyContext:
    study: str
    common: Common
    params: object
    seed: int
    device: object
    root: Path

    def path(self, kind: str, name: str = "") -> Path:
        """metrics/<study>.json, plots/<study>/..., models/<study>/..., checkpoints/<study>/..."""
        if kind == "metrics":
            return self.root / "metrics" / f"{self.study}.json"
        p = self.root / kind / self.study / name
        (p.parent if name else p).mkdir(parents=True, exist_ok=True)
        return p


def data_root(ctx: StudyContext) -> Path:
    return ctx.root / ctx.common.data_root


def prepare(study: str, params_path: str | Path = "params.yaml", root: str | Path = ".") -> StudyContext:
    """Validate params (whole file), seed everything, pick the device. Fails before any compute."""
    sections = load_params(params_path, [study])
    common = sections["common"]
    configure_threads(common.threads)
    seed = study_seed(common.seed, study)
    seed_everything(seed)
    return StudyContext(study, common, sections[study], seed, pick_device(common.device), Path(root))


def task_runner(common: Common):
    """Threads by default; `common.task_runner: dask` fans out to a Dask cluster (address or a local one)."""
    if common.task_runner == "dask":
        from prefect_dask import DaskTaskRunner

        if common.dask_address:
            return DaskTaskRunner(address=common.dask_address)
        return DaskTaskRunner(cluster_kwargs={"n_workers": common.max_workers, "threads_per_worker": 1,
                                              "processes": True, "dashboard_address": None})
    return ThreadPoolTaskRunner(max_workers=common.max_workers)


def run_flow(flow_obj, study: str, params_path: str | Path = "params.yaml", **kwargs):
    """Run a study flow with the task runner named in params."""
    common = load_params(params_path, [study])["common"]
    return flow_obj.with_options(task_runner=task_runner(common))(params_path=str(params_path), **kwargs)


def publish(ctx: StudyContext, run, metrics: dict, claims, summary: dict[str, float], t0: float, log=None) -> dict:
    """The end of every study flow: write metrics/<study>.json atomically, attach it and plots/<study>/ to the
    MLflow run, log the summary metrics, wall time and one 0/1 metric per claim, and log the claims' outcome."""
    atomic_write_json(ctx.path("metrics"), metrics)
    run.log_artifact(ctx.path("metrics"))
    plots = ctx.root / "plots" / ctx.study
    if plots.exists():
        run.log_artifact(plots, "plots")
    values = {k: float(v) for k, v in summary.items() if v is not None}
    values.update({f"claim_{c.id}": float(bool(c.holds)) for c in claims})
    values["wall_seconds"] = time.time() - t0
    run.log_metrics(values)
    if log is not None:
        log.info("%s: %s", ctx.study, {c.id: (c.measured, c.holds) for c in claims})
    return metrics
