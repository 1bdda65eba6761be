"""The task runner is configuration: the same flow fans out over threads or a local 2-worker Dask cluster."""
import pytest

from flows.common import run_flow, task_runner
from flows.maze import build_mazes_flow
from tenfold.core.config import Common


def test_runner_choice():
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    assert isinstance(task_runner(Common()), ThreadPoolTaskRunner)
    assert isinstance(task_runner(Common(task_runner="dask", max_workers=2)), DaskTaskRunner)
    assert isinstance(task_runner(Common(task_runner="dask", dask_address="tcp://127.0.0.1:8786")), DaskTaskRunner)


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
        assert (tmp_path / "a" / "data" / "mazes" / f).read_bytes() == (tmp_path / "b" / "data" / "mazes" / f).read_bytes()
