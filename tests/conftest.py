"""Shared fixtures of the test suite (tests/unit: library, fast; tests/flows: Prefect/MLflow/CLI at tiny scale;
tests/e2e: the real pipeline through DVC). Tests use these fixtures; nothing imports this module."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# one Prefect home per pytest-xdist worker (`make test` runs the files in parallel processes)
os.environ.setdefault("PREFECT_HOME", str(ROOT / ".prefect-test" / os.environ.get("PYTEST_XDIST_WORKER", "main")))
import tasks._env  # noqa: E402,F401  (telemetry off before prefect/mlflow import)
from tenfold.core.config import deep_merge  # noqa: E402


def pytest_configure(config):
    """The default suite is the fast one: without `-m`, slow tests are deselected (`make test` runs all)."""
    if not config.option.markexpr:
        config.option.markexpr = "not slow"


@pytest.fixture(scope="session")
def root() -> Path:
    """The project root (the checkout under test)."""
    return ROOT


@pytest.fixture(scope="session")
def prefect_harness():
    """One ephemeral Prefect API for every flow test of the session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def _tiny_params(tmp_path: Path, sections: list[str] | None = None, extra: dict | None = None) -> Path:
    """params.yaml + profiles/tiny.yaml (+ extra), restricted to `sections`, written under tmp_path."""
    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    merged = deep_merge(base, yaml.safe_load((ROOT / "profiles" / "tiny.yaml").read_text()))
    merged = deep_merge(merged, extra or {})
    if sections is not None:
        merged = {k: v for k, v in merged.items() if k == "common" or k in sections}
    merged["common"]["mlflow_uri"] = f"sqlite:///{tmp_path / 'mlflow.db'}"
    if "shared_data" not in (extra or {}).get("common", {}):
        merged["common"]["shared_data"] = str(ROOT.parent / "shared" / "data")
    p = tmp_path / "params.yaml"
    p.write_text(yaml.safe_dump(merged, sort_keys=False))
    return p


@pytest.fixture
def tiny(tmp_path):
    """`tiny(sections=None, extra=None)` -> path of a tiny-profile params file under tmp_path."""
    return lambda sections=None, extra=None: _tiny_params(tmp_path, sections, extra)


@pytest.fixture(scope="session")
def copy_project():
    """`copy_project(dst)`: the project as git's index has it (what a fresh clone has once committed)."""

    def copy(dst: Path) -> Path:
        dst.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "checkout-index", "--all", "--force", f"--prefix={dst}/"], cwd=ROOT, check=True)
        return dst

    return copy


@pytest.fixture(scope="session")
def check_study_outputs():
    """`check_study_outputs(root, out, slug, claim_ids)`: what every study flow must leave behind: the metrics
    and results files of the contract, its figures, a finished MLflow run with lineage tags and one registered
    model version carrying the check's outcome. Returns the results dict."""

    def check(root: Path, out: dict, slug: str, claim_ids: set[str]) -> dict:
        from mlflow.tracking import MlflowClient

        from tenfold.registry import get

        r = json.loads((root / "results" / f"{slug}.json").read_text())
        m = json.loads((root / "metrics" / f"{slug}.json").read_text())
        assert r["study"] == slug and r["arxiv"] == get(slug).arxiv
        assert {c["id"] for c in r["claims"]} == claim_ids == set(m["claims"])
        assert out["claims"] == r["claims"]
        for c in r["claims"]:
            assert set(c) >= {"id", "claim", "paper", "measured", "target", "holds"}
            assert isinstance(c["holds"], bool)
            assert m["claims"][c["id"]] == {"measured": c["measured"], "target": c["target"], "holds": c["holds"]}
        assert set(m) - {"claims"} == set(r["headline"]) and len(r["headline"]) <= 20
        assert r["figures"] and all((root / f["path"]).exists() for f in r["figures"])
        client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
        run = client.get_run(r["run"]["mlflow_run_id"])
        for tag in ("study", "arxiv", "git_commit", "dvc_stage", "data_source"):
            assert run.data.tags.get(tag), tag
        assert run.data.tags["study"] == slug and run.data.tags["dvc_stage"] == slug
        assert run.info.status == "FINISHED"
        versions = client.search_model_versions(f"name='tenfold-{slug}'")
        assert len(versions) == 1 and versions[0].tags["passed_check"] in ("true", "false")
        return r

    return check
