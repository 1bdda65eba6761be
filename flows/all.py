"""Every study as subflows of one parent flow (the same order as `dvc repro`)."""

from __future__ import annotations

from prefect import flow

from flows.common import available_targets, flow_for


@flow(name="tenfold-all")
def all_flow(params_path: str = "params.yaml", root: str = ".") -> dict:
    """Run every data build and study whose section is in params.yaml; returns each study's claims."""
    out = {}
    for stage in available_targets(params_path):
        result = flow_for(stage)(params_path=params_path, root=root)
        if isinstance(result, dict) and "claims" in result:
            out[stage] = {c["id"]: c["holds"] for c in result["claims"]}
    return out
