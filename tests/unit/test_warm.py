"""The warm interpreter (flows/warm.py): a stage forked from it behaves as the same command in a new interpreter.

The mechanics run against a server that preloads nothing and runs a stand-in command (tests/support/warm_probe.py);
the slow test at the end runs the real server (torch, prefect, mlflow preloaded) and the real `tenfold run`."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from flows.warm import env_mismatch

ROOT = Path(__file__).resolve().parents[2]
CLIENT = (
    "import sys\nfrom flows.warm import delegate\n"
    "c = delegate(['tenfold', 'run', *sys.argv[1:]])\nsys.exit(99 if c is None else c)"
)
NOT_DELEGATED = 99


def _start(sock_dir: Path, env: dict, *extra: str) -> subprocess.Popen:
    ready = sock_dir / "ready"
    cmd = [sys.executable, "-m", "flows.warm", "serve", str(sock_dir / "sock"), "--ready-file", str(ready), *extra]
    server = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=open(sock_dir / "log", "w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while not ready.exists():
        assert server.poll() is None, (sock_dir / "log").read_text()
        assert time.monotonic() < deadline, "warm server did not start"
        time.sleep(0.1)
    return server


@pytest.fixture
def warm():
    """A server running the probe; yields (socket path, the environment both sides share, the server log)."""
    sock_dir = Path(tempfile.mkdtemp(prefix="tw", dir="/tmp"))  # a Unix socket path must stay under 108 bytes
    env = dict(os.environ)
    env.pop("TENFOLD_WARM", None)
    server = _start(sock_dir, env, "--module", str(ROOT / "tests" / "support" / "warm_probe.py"), "--no-preload")
    yield sock_dir / "sock", env, sock_dir / "log"
    server.terminate()
    server.wait(timeout=30)
    shutil.rmtree(sock_dir, ignore_errors=True)


def _client(sock, env, *args, cwd=ROOT, extra=None, **kw):
    env = {**env, "TENFOLD_WARM": str(sock), **(extra or {})}
    return subprocess.run([sys.executable, "-c", CLIENT, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=60, **kw)  # fmt: skip


def _gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def test_env_mismatch_names_variables_that_libraries_read_never_values():
    server = {"PATH": "/a", "PREFECT_API_URL": "http://x/api", "TENFOLD_JOBS": "1", "DVC_ROOT": "/p", "PWD": "/p"}
    same = {**server, "TENFOLD_JOBS": "2", "TENFOLD_CPU_SLOTS": "/tmp/s", "DVC_STAGE": "maze", "PWD": "/q"}
    assert env_mismatch(server, same) == []
    other = {**server, "PREFECT_API_URL": "http://secret@y/api", "AWS_SECRET_ACCESS_KEY": "s3cr3t"}
    other.pop("PATH")
    assert env_mismatch(server, other) == ["AWS_SECRET_ACCESS_KEY", "PATH", "PREFECT_API_URL"]


def test_a_forked_stage_gets_the_clients_streams_environment_and_exit_code(warm):
    sock, env, log = warm
    r = _client(sock, env, "env", extra={"TENFOLD_PROBE": "from the client"})
    assert r.returncode == 0, r.stderr
    seen = json.loads(r.stdout)
    assert seen["pid"] not in (os.getpid(),) and seen["cwd"] == str(ROOT)
    # the client's own variables reach the stage; the server's socket variable does not (no recursion)
    assert seen["env"]["TENFOLD_PROBE"] == "from the client" and seen["env"]["TENFOLD_WARM"] is None
    assert r.stderr.strip() == "probe stderr line"  # the stage wrote to the client's stderr; nothing else did
    assert f"ran as pid {seen['pid']}, exit 0" in log.read_text()
    # two stages do not repeat the server's random stream
    again = json.loads(_client(sock, env, "env").stdout)
    assert again["pid"] != seen["pid"] and again["draws"]["random"] != seen["draws"]["random"]
    assert again["draws"]["numpy"] != seen["draws"]["numpy"]
    assert _client(sock, env, "exit", "3").returncode == 3
    failed = _client(sock, env, "raise")
    assert failed.returncode == 1 and "RuntimeError: probe failure" in failed.stderr


def test_a_different_environment_or_directory_is_refused_and_runs_in_the_client(warm, tmp_path):
    sock, env, log = warm
    r = _client(sock, env, "env", extra={"PREFECT_API_URL": "http://user:hunter2@elsewhere/api"})
    assert r.returncode == NOT_DELEGATED and r.stdout == ""
    assert "refused (environment differs in PREFECT_API_URL)" in r.stderr and "running in this process" in r.stderr
    assert "hunter2" not in r.stderr + log.read_text()  # names only, never a value (secrets)
    r = _client(sock, env, "env", cwd=tmp_path)
    assert r.returncode == NOT_DELEGATED and f"the stage runs in {tmp_path}" in r.stderr


def test_without_a_server_the_command_runs_in_its_own_interpreter(tmp_path, monkeypatch):
    r = _client(tmp_path / "no-such-socket", dict(os.environ), "env")
    assert r.returncode == NOT_DELEGATED and "not answering" in r.stderr
    # only the stage commands (run, report) are delegated: the others are not even tried
    import io

    from flows.warm import delegate

    monkeypatch.setenv("TENFOLD_WARM", str(tmp_path / "no-such-socket"))
    tried, untried = io.StringIO(), io.StringIO()
    assert delegate(["tenfold", "report"], tried) is None and "not answering" in tried.getvalue()
    assert delegate(["tenfold", "check"], untried) is None and untried.getvalue() == ""


def _sleeping_stage(sock, env):
    """A client whose stage sleeps for a minute; returns it and the stage's pid (which the stage prints first)."""
    client = subprocess.Popen([sys.executable, "-c", CLIENT, "sleep", "60"], cwd=ROOT,
                              env={**env, "TENFOLD_WARM": str(sock)}, stdout=subprocess.PIPE, text=True)  # fmt: skip
    return client, int(client.stdout.readline())


def test_sigterm_to_the_client_stops_the_stage_and_reports_it_as_a_shell_does(warm):
    client, pid = _sleeping_stage(*warm[:2])
    client.terminate()
    assert client.wait(timeout=20) == 128 + signal.SIGTERM
    assert _gone(pid, 10)


def test_a_client_killed_outright_takes_its_stage_with_it(warm):
    log = warm[2]
    client, pid = _sleeping_stage(*warm[:2])
    client.kill()
    client.wait(timeout=10)
    assert _gone(pid, 10), "the stage outlived its client"
    deadline = time.monotonic() + 10
    while "its client had gone" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert f"ran as pid {pid}, exit -{int(signal.SIGTERM)}" in log.read_text()


@pytest.mark.slow
def test_the_real_server_runs_tenfold_commands_as_a_new_interpreter_would(tmp_path):
    """Preloaded torch, prefect and mlflow; the real CLI: the same output and exit code warm and cold."""
    sock_dir = Path(tempfile.mkdtemp(prefix="tw", dir="/tmp"))
    env = dict(os.environ)
    env.pop("TENFOLD_WARM", None)
    server = _start(sock_dir, env)
    try:
        assert "could not import" not in (sock_dir / "log").read_text()
        cmd = [sys.executable, "-m", "flows.cli", "run", "no_such_study"]
        cold = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        warm = subprocess.run(cmd, cwd=ROOT, env={**env, "TENFOLD_WARM": str(sock_dir / "sock")},
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        assert cold.returncode == warm.returncode == 2
        assert warm.stderr == cold.stderr and "no_such_study" in warm.stderr
        assert "`run no_such_study` ran as pid" in (sock_dir / "log").read_text()
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(sock_dir, ignore_errors=True)


@pytest.mark.slow
def test_forks_of_the_preloaded_server_draw_fresh_global_random_streams():
    """torch seeds its default generator at random when imported; a fork must not repeat the server's stream."""
    sock_dir = Path(tempfile.mkdtemp(prefix="tw", dir="/tmp"))
    env = dict(os.environ)
    env.pop("TENFOLD_WARM", None)
    server = _start(sock_dir, env, "--module", str(ROOT / "tests" / "support" / "warm_probe.py"))
    try:
        a, b = (json.loads(_client(sock_dir / "sock", env, "env").stdout)["draws"] for _ in range(2))
        assert set(a) == {"random", "numpy", "torch"}
        assert all(a[k] != b[k] for k in a), (a, b)
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(sock_dir, ignore_errors=True)
