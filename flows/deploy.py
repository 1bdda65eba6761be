"""Scheduled deployments of every study, served against a Prefect server.

    prefect server start --host 127.0.0.1 &                # or any server; then
    PREFECT_API_URL=http://127.0.0.1:4200/api tenfold deploy

Each study (and its data build) becomes a deployment `<flow>/<target>-scheduled` with its cron schedule from
`SCHEDULES` (nightly by default; the OpenReview re-scrape runs yearly after ICLR decisions). The serving process
runs the flows it is handed; stop it with Ctrl-C.
"""
from __future__ import annotations

import importlib
from pathlib import Path

from flows.cli import TARGETS, available_targets

DEFAULT_CRON = "0 2 * * *"  # nightly at 02:00
SCHEDULES = {
    "scrape_openreview": "0 3 1 6 *",  # yearly, 1 June: after ICLR decisions are public
    "openreview": "0 4 1 6 *",
}


def build_deployments(params_path: str = "params.yaml", root: str = ".", cron: str | None = None) -> list:
    params_path = str(Path(params_path).resolve())
    root = str(Path(root).resolve())
    deployments = []
    for target in available_targets(params_path):
        mod, attr, _ = TARGETS[target]
        fl = getattr(importlib.import_module(mod), attr)
        deployments.append(fl.to_deployment(
            name=f"{target}-scheduled", cron=cron or SCHEDULES.get(target, DEFAULT_CRON),
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
