"""Every study as subflows of one parent flow (the same order as `dvc repro`)."""
from __future__ import annotations

import importlib

from prefect import flow

from flows.cli import available_targets, TARGETS


@flow(name="tenfold-all")
def all_flow(params_path: str = "params.yaml", root: str = ".") -> dict:
    """Run every data build and study whose section is in params.yaml; returns each study's claims."""
    out = {}
    for target in available_targets(params_path):
        mod, attr, _ = TARGETS[target]
        result = getattr(importlib.import_module(mod), attr)(params_path=params_path, root=root)
        if isinstance(result, dict) and "claims" in result:
            out[target] = {c["id"]: c["holds"] for c in result["claims"]}
    return out


if __name__ == "__main__":
    all_flow()
