"""Scheduled deployments of every study, served against a Prefect server.

    prefect server start --host 127.0.0.1 &                # or any server; then
    PREFECT_API_URL=http://127.0.0.1:4200/api tenfold deploy

Each study (and its data build) becomes a deployment `<flow>/<target>-scheduled`, nightly by default; a study
module may provide its own `deployment()` (the OpenReview re-scrape + analysis runs yearly, see flows/openreview.py). The serving process
runs the flows it is handed; stop it with Ctrl-C.
"""
from __future__ import annotations

import importlib
from pathlib import Path

from flows.common import available_targets
from tenfold.registry import study_of_stage


def build_deployments(params_path: str = "params.yaml", root: str = ".", cron: str | None = None) -> list:
    """One deployment per target; a flow module with its own `deployment(cron, params_path, root)` (e.g. the
    OpenReview re-scrape that chains scrape and analysis) provides a single deployment for all its targets."""
    params_path = str(Path(params_path).resolve())
    root = str(Path(root).resolve())
    deployments, seen = [], set()
    for target in available_targets(params_path):
        study = study_of_stage(target)
        mod_name, attr = study.stages[target].split(":")
        mod = importlib.import_module(mod_name)
        if hasattr(mod, "deployment"):
            if mod_name not in seen:
                seen.add(mod_name)
                deployments.append(mod.deployment(cron=cron, params_path=params_path, root=root))
            continue
        deployments.append(getattr(mod, attr).to_deployment(
            name=f"{target}-scheduled", cron=cron or study.schedule,
            parameters={"params_path": params_path, "root": root}, tags=["tenfold", target]))
    return deployments


def serve_all(params_path: str = "params.yaml", root: str = ".", cron: str | None = None) -> None:
    from prefect import serve
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        raise RuntimeError("no Prefect server configured: start one (`prefect server start --host 127.0.0.1`) and "
                           "set PREFECT_API_URL=http://127.0.0.1:4200/api")
    serve(*build_deployments(params_path, root, cron))


if __name__ == "__main__":
    serve_all()
