"""End to end on the cluster-in-a-box: `scripts/cluster.sh up` (PostgreSQL, MLflow server, Prefect server + process
work pool + worker, Dask scheduler + 2 workers, all separate processes on 127.0.0.1), then two studies, maze
(stages build_mazes + maze) and smoothing, at the tiny profile through DVC -> Prefect worker -> Dask -> MLflow
server, each triggered twice as its schedule would; the results must equal the embedded default's (`make
pipeline`: ephemeral services, sqlite, threads) at the same seed. Then `scripts/cluster.sh down` stops everything
it started.

Timings (embedded run, cluster run, second run, up, down) are printed: `pytest -s tests/e2e/test_cluster.py`.
"""

from __future__ import annotations

import json
import socket
import sys
import time
from pathlib import Path

import pytest

from tests.support.project import dvc_status, git, run, study_project

ROOT = Path(__file__).resolve().parents[2]
# the acceptance check passes at tiny scale, so the `champion` alias moves in both runs
EXTRA = {"maze": {"eval": {"accept_min_train_acc": 0.0}}}
STUDIES = ("maze", "smoothing")


def _needs_postgres() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import cluster
    finally:
        sys.path.pop(0)
    try:
        cluster.pg_bindir()
    except cluster.ServiceError as e:
        pytest.skip(f"{e} (needed for the MLflow server's backend store)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed: pip install -e '.[cluster]' (`make setup` does)")


def _env_file(path: Path) -> dict:
    out = {}
    for line in path.read_text().splitlines():
        if line.startswith("export "):
            k, v = line[len("export ") :].split("=", 1)
            out[k] = v
    return out


def _without_run(results):
    """Everything measured but the run record and wall-clock timings (seconds, certificates per second)."""
    if isinstance(results, dict):
        timing = ("run", "seconds", "certificates_per_second")
        return {k: _without_run(v) for k, v in results.items() if k not in timing}
    if isinstance(results, list):
        return [_without_run(v) for v in results]
    return results


def _port_open(url: str) -> bool:
    host, port = url.split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1].rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.slow
def test_two_studies_through_dvc_prefect_worker_dask_and_mlflow_server_match_the_embedded_run(tmp_path, copy_project):
    _needs_postgres()
    import torch
    from mlflow.tracking import MlflowClient

    timings = {}
    # the embedded default: what `make pipeline` runs (one local Prefect server for the stages, sqlite MLflow)
    embedded = study_project(tmp_path / "embedded", copy_project, STUDIES, EXTRA)
    t = time.time()
    run(["bash", "scripts/pipeline.sh"], embedded, {"PREFECT_HOME": str(embedded / ".prefect")})
    timings["embedded"] = time.time() - t

    proj = study_project(tmp_path / "cluster", copy_project, STUDIES, EXTRA)
    home = {"PREFECT_HOME": str(proj / ".prefect")}
    t = time.time()
    up = run(["bash", "scripts/cluster.sh", "up"], proj, home, timeout=600)
    timings["up"] = time.time() - t
    state = json.loads((proj / ".cluster" / "state.json").read_text())
    try:
        env = {**home, **_env_file(proj / ".cluster" / "env")}
        assert set(env) >= {"MLFLOW_TRACKING_URI", "PREFECT_API_URL", "TENFOLD_DASK_ADDRESS", "TENFOLD_WORK_POOL"}
        assert set(state["services"]) == {
            "postgres",
            "mlflow",
            "prefect",
            "worker",
            "dask-scheduler",
            "dask-worker-1",
            "dask-worker-2",
        }, up.stdout
        st = run(["bash", "scripts/cluster.sh", "status"], proj, home)
        assert st.stdout.count(" up\n") == 7, st.stdout

        # the scheduled units, run now: `dvc repro` of each study's stages in a flow run of the worker (a separate
        # process): `build_mazes maze`, then `smoothing`
        deploy = [sys.executable, "-m", "flows.cli", "deploy", "--pool", env["TENFOLD_WORK_POOL"], "--run"]
        commits = int(git(proj, "rev-list", "--count", "HEAD"))
        t = time.time()
        for study in STUDIES:
            first = run([*deploy, study], proj, env, timeout=1500)
            assert f"tenfold-repro/{study}: flow run" in first.stdout and "Completed" in first.stdout, first.stdout
        timings["cluster"] = time.time() - t
        assert dvc_status(proj, env) == {} and git(proj, "status", "--porcelain") == ""
        assert int(git(proj, "rev-list", "--count", "HEAD")) == commits + len(STUDIES)  # one lock commit per run

        # same seed, same numbers as the embedded run (everything but the run's id and timings)
        for rel in [f"{kind}/{s}.json" for s in STUDIES for kind in ("metrics", "results")]:
            a, b = json.loads((embedded / rel).read_text()), json.loads((proj / rel).read_text())
            assert _without_run(a) == _without_run(b), rel
        for f in sorted((embedded / "data" / "mazes").glob("*.npz")):
            assert f.read_bytes() == (proj / "data" / "mazes" / f.name).read_bytes(), f.name
        for f in sorted((embedded / "plots" / "maze").glob("*.csv")):
            assert f.read_text() == (proj / "plots" / "maze" / f.name).read_text(), f.name
        wa = torch.load(embedded / "models" / "maze" / "recurrent.pt", weights_only=True)
        wb = torch.load(proj / "models" / "maze" / "recurrent.pt", weights_only=True)
        assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)

        # the MLflow server (PostgreSQL store, proxied artifacts) has what sqlite has in the embedded run
        results = json.loads((proj / "results" / "maze.json").read_text())
        client = MlflowClient(env["MLFLOW_TRACKING_URI"])
        exp = client.get_experiment_by_name("maze")
        runs = client.search_runs([exp.experiment_id])
        assert [r.info.run_id for r in runs] == [results["run"]["mlflow_run_id"]]
        r = runs[0]
        assert r.info.status == "FINISHED" and r.info.artifact_uri.startswith("mlflow-artifacts:/")
        for tag in ("study", "arxiv", "git_commit", "dvc_stage", "data_source"):
            assert r.data.tags.get(tag), tag
        assert r.data.tags["dvc_stage"] == "maze" and len(r.inputs.dataset_inputs) == 3
        assert any(k.startswith("maze.") for k in r.data.params)
        assert {a.path for a in client.list_artifacts(r.info.run_id)} >= {"maze.json", "plots"}
        assert any((proj / ".cluster" / "artifacts").rglob("maze.json")), "artifacts not stored by the server"
        champion = client.get_model_version_by_alias("tenfold-maze", "champion")
        assert champion.run_id == r.info.run_id and champion.tags["passed_check"] == "true"
        sm = json.loads((proj / "results" / "smoothing.json").read_text())["run"]["mlflow_run_id"]
        sm_runs = client.search_runs([client.get_experiment_by_name("smoothing").experiment_id])
        assert [r.info.run_id for r in sm_runs] == [sm] and sm_runs[0].data.tags["dvc_stage"] == "smoothing"
        local = MlflowClient(f"sqlite:///{embedded / 'mlflow.db'}")
        assert str(local.get_model_version_by_alias("tenfold-maze", "champion").version) == str(champion.version)
        emb = local.search_runs([local.get_experiment_by_name("maze").experiment_id])[0]
        assert {k: v for k, v in emb.data.metrics.items() if k not in ("wall_seconds", "cpu_seconds")} == {
            k: v for k, v in r.data.metrics.items() if k not in ("wall_seconds", "cpu_seconds")
        }

        # the fan-out ran on the Dask workers; the stage flows reported to the Prefect server
        from distributed import Client

        with Client(env["TENFOLD_DASK_ADDRESS"], timeout=10) as c:
            prefixes = c.run_on_scheduler(lambda dask_scheduler: sorted(dask_scheduler.task_prefixes))
        assert {"build_maze_file", "train_maze", "evaluate_mazes", "train_base", "certify"} <= set(prefixes), prefixes
        from prefect.client.orchestration import get_client
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings({PREFECT_API_URL: env["PREFECT_API_URL"]}), get_client(sync_client=True) as pc:
            flow_runs = [(pc.read_flow(fr.flow_id).name, fr) for fr in pc.read_flow_runs()]
        done = sorted((name, fr.state_type.value) for name, fr in flow_runs if fr.state_type.value != "SCHEDULED")
        expected = [("build_mazes", "COMPLETED"), ("maze", "COMPLETED"), ("smoothing", "COMPLETED")]
        assert done == sorted([*expected, *[("tenfold-repro", "COMPLETED")] * len(STUDIES)]), done
        # the nightly schedule has queued the next runs of the deployment
        assert {name for name, fr in flow_runs if fr.state_type.value == "SCHEDULED"} == {"tenfold-repro"}
        for name, fr in flow_runs:
            if fr.state_type.value == "COMPLETED":
                timings[f"flow run {name}"] = fr.total_run_time.total_seconds()

        # the next scheduled run finds nothing stale: nothing runs, nothing is committed or logged
        lock = (proj / "dvc.lock").read_text()
        t = time.time()
        for study in STUDIES:
            second = run([*deploy, study], proj, env, timeout=600)
            assert "Completed" in second.stdout, second.stdout
        timings["second"] = time.time() - t
        assert dvc_status(proj, env) == {} and (proj / "dvc.lock").read_text() == lock
        assert int(git(proj, "rev-list", "--count", "HEAD")) == commits + len(STUDIES)
        for study in STUDIES:
            assert len(client.search_runs([client.get_experiment_by_name(study).experiment_id])) == 1
    finally:
        t = time.time()
        down = run(["bash", "scripts/cluster.sh", "down"], proj, home, check=False, timeout=300)
        timings["down"] = time.time() - t
        print(
            "cluster e2e timings (s):",
            {k: round(v, 1) for k, v in timings.items()},
            f"ratio cluster/embedded {timings.get('cluster', 0) / timings['embedded']:.2f}",
            file=sys.stderr,
        )
    assert down.returncode == 0, down.stdout + down.stderr
    assert not (proj / ".cluster" / "state.json").exists() and not (proj / ".cluster" / "env").exists()
    for name, entry in state["services"].items():
        assert not Path(f"/proc/{entry['pid']}").exists(), f"{name} (pid {entry['pid']}) still running"
        assert name.startswith("dask-worker") or not _port_open(entry["url"]), f"{name} still listening"
    assert not Path(state["postgres"]["tmpdir"]).exists()
