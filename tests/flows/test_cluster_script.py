"""scripts/cluster.sh without starting anything heavy: a PostgreSQL that is not running fails in seconds naming it
and its URL, `status` and `down` of a stack that is not up say so, unknown services are refused, and `down` stops
only what `up` recorded."""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cluster():
    spec = importlib.util.spec_from_file_location("tenfold_cluster_script", ROOT / "scripts" / "cluster.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_postgres_not_started_fails_in_seconds_naming_it(tmp_path, cluster):
    pytest.importorskip("psycopg", reason="psycopg is not installed: pip install -e '.[cluster]' (`make setup`)")
    c = cluster.Cluster(tmp_path / "c")
    port = _closed_port()
    c.state = {"postgres": {"port": port, "password": "x", "tmpdir": str(tmp_path / "pg"), "user": "tenfold"}}
    t = time.time()
    with pytest.raises(cluster.ServiceError, match=f"PostgreSQL at postgresql://127.0.0.1:{port} is not accepting"):
        c._mlflow()  # the MLflow server is never started against a database that does not answer
    assert time.time() - t < 10
    assert "mlflow" not in c.state.get("services", {})


def test_status_and_down_of_a_stack_that_is_not_up(tmp_path):
    env = {"TENFOLD_CLUSTER_DIR": str(tmp_path / "none")}
    run = lambda *a: subprocess.run(  # noqa: E731
        [sys.executable, "scripts/cluster.py", *a],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**_env(), **env},
    )
    st = run("status")
    assert st.returncode == 3 and "not up" in st.stdout
    down = run("down")
    assert down.returncode == 0 and "not up" in down.stdout
    bad = run("up", "--only", "redis")
    assert bad.returncode == 2 and "unknown service(s) ['redis']" in bad.stderr


def test_down_stops_only_what_up_recorded(tmp_path, cluster):
    mine = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
    try:
        c = cluster.Cluster(tmp_path / "c")
        c.state = {
            "services": {
                "dask-scheduler": {
                    "pid": mine.pid,
                    "starttime": cluster._starttime(mine.pid),
                    "url": "tcp://127.0.0.1:1",
                    "log": "x",
                    "cmd": "sleep",
                },
                # a recorded pid whose process is gone (the kernel reused nothing: start time differs)
                "prefect": {"pid": other.pid, "starttime": "0", "url": "http://x", "log": "x", "cmd": "sleep"},
            }
        }
        c._save()
        assert c.down(quiet=True) == ["dask-scheduler"]
        assert mine.wait(10) is not None
        assert other.poll() is None  # not started by `up` as recorded: left alone
        assert not (tmp_path / "c" / "state.json").exists()
    finally:
        for p in (mine, other):
            p.kill()
            p.wait()


def _env() -> dict:
    import os

    return {k: v for k, v in os.environ.items() if k != "TENFOLD_CLUSTER_DIR"}


def test_env_file_has_what_clients_need(tmp_path, cluster):
    c = cluster.Cluster(tmp_path / "c")
    c.state = {
        "started": "now",
        "pool": "tenfold",
        "services": {
            "mlflow": {"url": "http://127.0.0.1:1"},
            "prefect": {"url": "http://127.0.0.1:2/api"},
            "worker": {"url": "x"},
            "dask-scheduler": {"url": "tcp://127.0.0.1:3"},
        },
    }
    c.dir.mkdir(parents=True)
    c._write_env()
    text = (tmp_path / "c" / "env").read_text()
    for line in (
        "export MLFLOW_TRACKING_URI=http://127.0.0.1:1",
        "export PREFECT_API_URL=http://127.0.0.1:2/api",
        "export TENFOLD_DASK_ADDRESS=tcp://127.0.0.1:3",
        "export TENFOLD_WORK_POOL=tenfold",
        "export MLFLOW_HTTP_REQUEST_MAX_RETRIES=3",
    ):
        assert line in text
    assert json.dumps(c.state)  # what down/status read back
