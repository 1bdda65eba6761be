"""Tracking to an MLflow server over HTTP: a server that is down fails in seconds naming it and its URL; a server
that stops in the middle of a study run loses no results (publish writes results/ and metrics/ first) and a rerun
once it is back logs them."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tasks import track
from tasks.track import TrackingServerUnavailable, check_tracking_server, study_run
from tenfold.core.config import Common


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_tracking_server_that_is_down_fails_in_seconds_naming_it(monkeypatch):
    url = f"http://127.0.0.1:{_closed_port()}"
    t = time.time()
    with pytest.raises(TrackingServerUnavailable, match=f"MLflow tracking server at {url} is not answering"):
        check_tracking_server(url)
    # a study run fails before creating anything, whatever MLflow's own client retries would do
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url + "/")
    with pytest.raises(TrackingServerUnavailable, match=url):
        with study_run("maze", {"common": Common()}):
            pytest.fail("the run must not start")
    assert time.time() - t < 10


def test_credentials_never_reach_the_message():
    url = f"http://user:s3cret@127.0.0.1:{_closed_port()}"
    with pytest.raises(TrackingServerUnavailable) as e:
        check_tracking_server(url)
    assert "s3cret" not in str(e.value) and "http://127.0.0.1:" in str(e.value)


def test_sqlite_and_other_uris_are_not_probed():
    check_tracking_server("sqlite:///nowhere/mlflow.db")
    check_tracking_server("databricks")


class Server:
    """`mlflow server` on a sqlite file with proxied artifacts, stoppable and restartable on the same port."""

    def __init__(self, tmp: Path):
        self.tmp, self.port, self.proc = tmp, None, None
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
        env.pop("MLFLOW_TRACKING_URI", None)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlflow",
                "server",
                "--backend-store-uri",
                f"sqlite:///{self.tmp / 'server.db'}",
                "--artifacts-destination",
                str(self.tmp / "artifacts"),
                "--serve-artifacts",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                "1",
            ],
            env=env,
            cwd=self.tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.time() + 180
        while time.time() < deadline:
            assert self.proc.poll() is None, f"mlflow server exited with {self.proc.returncode}"
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2):
                    return
            except OSError:
                time.sleep(0.5)
        raise TimeoutError("mlflow server did not answer")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(20)


@pytest.mark.slow
def test_a_server_stopped_mid_run_loses_no_results_and_a_rerun_logs_them(tmp_path, tiny, prefect_harness, monkeypatch):
    from mlflow.tracking import MlflowClient

    from flows.common import run_flow
    from flows.maze import build_mazes_flow, maze_flow

    server = Server(tmp_path)
    server.start()
    try:
        params = tiny(["maze"], {"maze": {"eval": {"accept_min_train_acc": 0.0}}})
        proj = tmp_path / "proj"
        monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
        monkeypatch.delenv("TENFOLD_DASK_ADDRESS", raising=False)
        run_flow(build_mazes_flow, params, root=str(proj))  # no tracking

        log_model = track.StudyRun.log_model

        def stop_then_log(self, *a, **k):  # the server dies after the files are written, before the model upload
            server.stop()
            return log_model(self, *a, **k)

        monkeypatch.setattr(track.StudyRun, "log_model", stop_then_log)
        t = time.time()
        with pytest.raises(
            TrackingServerUnavailable, match=f"MLflow tracking server at {server.url} stopped answering during run"
        ):
            run_flow(maze_flow, params, root=str(proj))
        assert time.time() - t < 300
        written = json.loads((proj / "metrics" / "maze.json").read_text())
        results = json.loads((proj / "results" / "maze.json").read_text())
        assert written["claims"] and results["claims"] and results["run"]["mlflow_run_id"]

        # the server is back: a rerun logs the same numbers (training resumes from its checkpoint)
        monkeypatch.setattr(track.StudyRun, "log_model", log_model)
        server.start()
        out = run_flow(maze_flow, params, root=str(proj))
        assert json.loads((proj / "metrics" / "maze.json").read_text()) == written
        client = MlflowClient(server.url)
        run = client.get_run(out["run"]["mlflow_run_id"])
        assert run.info.status == "FINISHED" and run.info.artifact_uri.startswith("mlflow-artifacts:/")
        assert run.data.metrics["final_train_loss"] == written["final_train_loss"]
        assert client.get_model_version_by_alias("tenfold-maze", "champion").run_id == run.info.run_id
    finally:
        server.stop()
