import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PREFECT_HOME", str(ROOT / ".prefect-test"))
import flows._env  # noqa: E402,F401  (telemetry off before prefect/mlflow import)

from tenfold.config import deep_merge  # noqa: E402


def pytest_configure(config):
    """The default suite is the fast one: without `-m`, slow tests are deselected (`make test` runs all)."""
    if not config.option.markexpr:
        config.option.markexpr = "not slow"


@pytest.fixture(scope="session")
def prefect_harness():
    """One ephemeral Prefect API for every flow test of the session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def tiny_params(tmp_path: Path, sections: list[str] | None = None, extra: dict | None = None) -> Path:
    """params.yaml + profiles/tiny.yaml (+ extra), restricted to `sections`, written under tmp_path."""
    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    merged = deep_merge(base, yaml.safe_load((ROOT / "profiles" / "tiny.yaml").read_text()))
    merged = deep_merge(merged, extra or {})
    if sections is not None:
        merged = {k: v for k, v in merged.items() if k == "common" or k in sections}
    merged["common"]["mlflow_uri"] = f"sqlite:///{tmp_path / 'mlflow.db'}"
    merged["common"]["shared_data"] = str(ROOT.parent / "shared" / "data")
    p = tmp_path / "params.yaml"
    p.write_text(yaml.safe_dump(merged, sort_keys=False))
    return p


@pytest.fixture
def tiny(tmp_path):
    return lambda sections=None, extra=None: tiny_params(tmp_path, sections, extra)


def copy_project(dst: Path) -> Path:
    """The project as git's index has it (what a fresh clone has once committed), as plain files."""
    dst.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "checkout-index", "--all", "--force", f"--prefix={dst}/"], cwd=ROOT, check=True)
    return dst


def check_study_outputs(root: Path, out: dict, slug: str, arxiv: str, claim_ids: set[str]) -> dict:
    """What every study flow must leave behind: metrics with the claims contract, its figures, a finished MLflow
    run with lineage tags and one registered model version carrying the check's outcome. Returns the metrics."""
    import json

    from mlflow.tracking import MlflowClient

    m = json.loads((root / "metrics" / f"{slug}.json").read_text())
    assert m["study"] == slug and m["arxiv"] == arxiv
    assert {c["id"] for c in m["claims"]} == claim_ids
    assert out["claims"] == m["claims"]
    for c in m["claims"]:
        assert set(c) >= {"id", "claim", "paper", "measured", "target", "holds"}
        assert isinstance(c["holds"], bool)
    assert m["figures"] and all((root / f["path"]).exists() for f in m["figures"])
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    run = client.get_run(m["run"]["mlflow_run_id"])
    for tag in ("study", "arxiv", "git_commit", "dvc_stage", "data_source"):
        assert run.data.tags.get(tag), tag
    assert run.data.tags["study"] == slug and run.data.tags["dvc_stage"] == slug
    assert run.info.status == "FINISHED"
    versions = client.search_model_versions(f"name='tenfold-{slug}'")
    assert len(versions) == 1 and versions[0].tags["passed_check"] in ("true", "false")
    return m
