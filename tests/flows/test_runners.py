"""The task runner is configuration: the same flow fans out over threads, a local 2-worker Dask cluster, or a Dask
cluster started separately (`dask scheduler` + 2 `dask worker` processes, as scripts/cluster.sh starts them), with
identical results at the same seed."""

import json
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from flows.common import DaskUnavailable, run_flow, task_runner
from flows.maze import build_mazes_flow, maze_flow
from tenfold.core.config import Common

ROOT = Path(__file__).resolve().parents[2]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_runner_choice(monkeypatch):
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    monkeypatch.delenv("TENFOLD_DASK_ADDRESS", raising=False)
    assert isinstance(task_runner(Common()), ThreadPoolTaskRunner)
    assert isinstance(task_runner(Common(task_runner="dask", max_workers=2)), DaskTaskRunner)
    with socket.socket() as s:  # an address where a scheduler listens
        s.bind(("127.0.0.1", 0))
        s.listen()
        addr = f"tcp://127.0.0.1:{s.getsockname()[1]}"
        assert task_runner(Common(task_runner="dask", dask_address=addr)).address == addr
        # the cluster's env file wins over params, even with `task_runner: thread`
        monkeypatch.setenv("TENFOLD_DASK_ADDRESS", addr)
        assert task_runner(Common()).address == addr


def test_a_stopped_dask_scheduler_fails_in_seconds_naming_it(monkeypatch):
    monkeypatch.delenv("TENFOLD_DASK_ADDRESS", raising=False)
    addr = f"tcp://127.0.0.1:{_closed_port()}"
    import prefect_dask  # noqa: F401  (the bound times the refused connection, not a first import on busy cores)

    t = time.time()
    with pytest.raises(DaskUnavailable, match=f"Dask scheduler at {addr} is not answering"):
        task_runner(Common(task_runner="dask", dask_address=addr))
    assert time.time() - t < 5


@pytest.mark.slow
def test_dask_runner_gives_the_same_data_as_threads(tmp_path, tiny, prefect_harness):
    threads = tiny(["maze"])
    dask_params = tmp_path / "dask.yaml"
    dask_params.write_text(threads.read_text().replace("task_runner: thread", "task_runner: dask"))
    assert "task_runner: dask" in dask_params.read_text()
    run_flow(build_mazes_flow, threads, root=str(tmp_path / "a"))
    run_flow(build_mazes_flow, dask_params, root=str(tmp_path / "b"))
    files = sorted(p.name for p in (tmp_path / "a" / "data" / "mazes").glob("*.npz"))
    assert files == ["test_5.npz", "test_7.npz", "train_5.npz"]
    for f in files:
        assert (tmp_path / "a" / "data" / "mazes" / f).read_bytes() == (
            tmp_path / "b" / "data" / "mazes" / f
        ).read_bytes()


def _without_run(results: dict) -> dict:
    """results/<slug>.json minus what names one run (MLflow run id, wall time)."""
    return {k: v for k, v in results.items() if k != "run"}


@pytest.mark.slow
def test_separate_dask_scheduler_and_workers_give_the_same_maze_results_as_threads(
    tmp_path, tiny, prefect_harness, monkeypatch
):
    """`dask scheduler` and two `dask worker` processes, started by scripts/cluster.sh (--only dask) as separate
    processes; the maze build and training fan out to them through TENFOLD_DASK_ADDRESS."""
    cluster = tmp_path / "cluster"
    env = dict(os.environ, TENFOLD_CLUSTER_DIR=str(cluster))
    up = subprocess.run(
        ["bash", "scripts/cluster.sh", "up", "--only", "dask"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        state = json.loads((cluster / "state.json").read_text())
        assert set(state["services"]) == {"dask-scheduler", "dask-worker-1", "dask-worker-2"}
        addr = state["services"]["dask-scheduler"]["url"]
        params = tiny(["maze"])
        monkeypatch.delenv("TENFOLD_DASK_ADDRESS", raising=False)
        for flow in (build_mazes_flow, maze_flow):
            run_flow(flow, params, root=str(tmp_path / "threads"))
        monkeypatch.setenv("TENFOLD_DASK_ADDRESS", addr)
        for flow in (build_mazes_flow, maze_flow):
            run_flow(flow, params, root=str(tmp_path / "dask"))
        from distributed import Client

        with Client(addr, timeout=10) as c:  # the work ran on the separate workers
            prefixes = c.run_on_scheduler(lambda dask_scheduler: sorted(dask_scheduler.task_prefixes))
            assert len(c.scheduler_info(n_workers=-1)["workers"]) == 2
        assert {"build_maze_file", "train_maze", "evaluate_mazes"} <= set(prefixes), prefixes
        a, b = tmp_path / "threads", tmp_path / "dask"
        for f in sorted((a / "data" / "mazes").glob("*.npz")):
            assert f.read_bytes() == (b / "data" / "mazes" / f.name).read_bytes(), f.name
        assert json.loads((a / "metrics" / "maze.json").read_text()) == json.loads(
            (b / "metrics" / "maze.json").read_text()
        )
        assert _without_run(json.loads((a / "results" / "maze.json").read_text())) == _without_run(
            json.loads((b / "results" / "maze.json").read_text())
        )
        for csv in sorted((a / "plots" / "maze").glob("*.csv")):
            assert csv.read_text() == (b / "plots" / "maze" / csv.name).read_text(), csv.name
    finally:
        down = subprocess.run(
            ["bash", "scripts/cluster.sh", "down"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert down.returncode == 0, down.stdout + down.stderr
    assert not (cluster / "state.json").exists()
    for name, entry in state["services"].items():
        assert not Path(f"/proc/{entry['pid']}").exists() or _zombie(entry["pid"]), f"{name} still running"


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
