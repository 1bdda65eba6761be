"""Cluster-in-a-box: the services a lab runs on several machines, as local processes on 127.0.0.1.

    scripts/cluster.sh up       # PostgreSQL, MLflow server, Prefect server + process work pool + worker, Dask
    source .cluster/env         # MLFLOW_TRACKING_URI, PREFECT_API_URL, TENFOLD_DASK_ADDRESS, TENFOLD_WORK_POOL
    scripts/cluster.sh status   # each service: pid, URL, answering or not
    scripts/cluster.sh down     # stops only the processes `up` started (recorded in .cluster/state.json)

What runs (each the way its own documentation sets it up, on a free port of 127.0.0.1):
- postgres: Debian's PostgreSQL, `initdb` into a temporary directory and `postgres -D` as an unprivileged user
  (`postgres`, else `nobody`, when run as root); password auth on 127.0.0.1; databases `mlflow` and `prefect`.
- mlflow: `mlflow server --backend-store-uri postgresql+psycopg://... --artifacts-destination .cluster/artifacts
  --serve-artifacts` (proxied artifacts: clients never write the store directly).
- prefect: `prefect server start` on the same PostgreSQL (database `prefect`), then
  `prefect work-pool create <pool> --type process` and `prefect worker start --pool <pool>` (a separate process).
- dask: `dask scheduler` and two `dask worker` processes (one thread each), started in the project root.

Logs are in .cluster/logs/, pids in .cluster/pids/ and .cluster/state.json. `--only dask` (or any comma list of
postgres, mlflow, prefect, worker, dask) starts a subset; what a service needs is started with it.
TENFOLD_CLUSTER_DIR (or --dir) moves the folder. Every wait is bounded: a service that does not answer fails `up`
within its timeout, naming the service, its URL and its log, and `up` then stops what it had started.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ORDER = ("postgres", "mlflow", "prefect", "worker", "dask")
NEEDS = {"mlflow": ("postgres",), "prefect": ("postgres",), "worker": ("prefect",)}
DB_USER = "tenfold"
# bounded MLflow client retries (its defaults retry a dead server for minutes); also set by tasks/track.py
MLFLOW_CLIENT_ENV = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
}


class ServiceError(RuntimeError):
    """A service did not start or does not answer: the message names it, its URL and its log."""


# ---------------------------------------------------------------------------------------------------------- probes
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tcp_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return 200 <= r.status < 300
    except (OSError, urllib.error.URLError, ValueError):
        return False


def http_json(url: str, body: dict | None = None, timeout: float = 5.0):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json"}, method="GET" if body is None else "POST"
    )
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read() or b"null")


def pg_ready(port: int, password: str, timeout: float = 2.0) -> str | None:
    """None when PostgreSQL on 127.0.0.1:port accepts a login, else the reason."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install -e '.[cluster]'; `make setup` does it)"
    try:
        with psycopg.connect(
            host="127.0.0.1",
            port=port,
            user=DB_USER,
            password=password,
            dbname="postgres",
            connect_timeout=max(1, int(timeout)),
        ):
            return None
    except psycopg.Error as e:
        return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# ------------------------------------------------------------------------------------------------------- processes
def _starttime(pid: int) -> str | None:
    """The kernel's start time of `pid` (guards `down` against a recycled pid)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def alive(entry: dict) -> bool:
    pid = entry.get("pid")
    return bool(pid) and _starttime(pid) is not None and _starttime(pid) == entry.get("starttime")


def _unprivileged_user() -> str | None:
    """PostgreSQL refuses to run as root: as root, run it as `postgres` (Debian's package creates it) or `nobody`."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise ServiceError("postgres: running as root and neither user `postgres` nor `nobody` exists to run it as")


def pg_bindir() -> Path:
    """Debian's PostgreSQL binaries (/usr/lib/postgresql/<version>/bin, newest first), else PATH."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda p: [int(x) for x in p.parts[-3].split(".") if x.isdigit()],
        reverse=True,
    )
    if found:
        return found[0].parent
    exe = shutil.which("postgres") or shutil.which("initdb")
    if exe:
        return Path(exe).resolve().parent
    raise ServiceError(
        "postgres: PostgreSQL is not installed (Debian: `apt-get install postgresql`; "
        "`make setup` installs it when run as root)"
    )


class Cluster:
    def __init__(self, folder: Path, checkout: Path = ROOT, pool: str = "tenfold", dask_workers: int = 2):
        self.dir, self.checkout, self.pool, self.dask_workers = (
            Path(folder).resolve(),
            Path(checkout),
            pool,
            dask_workers,
        )
        self.logs, self.pids = self.dir / "logs", self.dir / "pids"
        self.state_file, self.env_file = self.dir / "state.json", self.dir / "env"
        self.state = json.loads(self.state_file.read_text()) if self.state_file.exists() else {}

    # ---------------------------------------------------------------------------------------------- bookkeeping
    def _save(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=1))
        os.chmod(tmp, 0o600)  # holds the database password
        tmp.replace(self.state_file)

    def _base_env(self) -> dict:
        env = dict(os.environ)
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        env["PYTHONPATH"] = (
            f"{self.checkout}{os.pathsep}{env['PYTHONPATH']}" if env.get("PYTHONPATH") else str(self.checkout)
        )
        env.update(
            PREFECT_HOME=str(self.dir / "prefect"),
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            MLFLOW_DISABLE_TELEMETRY="true",
            DO_NOT_TRACK="true",
            DVC_NO_ANALYTICS="1",
        )
        for k in ("MLFLOW_TRACKING_URI", "PREFECT_API_URL", "TENFOLD_DASK_ADDRESS"):
            env.pop(k, None)
        return env

    def client_env(self) -> dict:
        """What a client of the running stack needs (also written to .cluster/env)."""
        s, out = self.state.get("services", {}), {}
        if "mlflow" in s:
            out["MLFLOW_TRACKING_URI"] = s["mlflow"]["url"]
            out.update(MLFLOW_CLIENT_ENV)
        if "prefect" in s:
            out["PREFECT_API_URL"] = s["prefect"]["url"]
        if "worker" in s:
            out["TENFOLD_WORK_POOL"] = self.state["pool"]
        if "dask-scheduler" in s:
            out["TENFOLD_DASK_ADDRESS"] = s["dask-scheduler"]["url"]
        return out

    def _start(
        self, name: str, cmd: list[str], env: dict, url: str, cwd: Path | None = None, user: str | None = None
    ) -> subprocess.Popen:
        self.logs.mkdir(parents=True, exist_ok=True)
        self.pids.mkdir(parents=True, exist_ok=True)
        log = self.logs / f"{name}.log"
        with open(log, "ab") as out:
            kw = {"user": user, "group": pwd.getpwnam(user).pw_gid, "extra_groups": []} if user else {}
            proc = subprocess.Popen(
                cmd,
                cwd=cwd or self.checkout,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                **kw,
            )
        self.state.setdefault("services", {})[name] = {
            "pid": proc.pid,
            "starttime": _starttime(proc.pid),
            "url": url,
            "log": str(log),
            "cmd": " ".join(cmd),
        }
        (self.pids / f"{name}.pid").write_text(f"{proc.pid}\n")
        self._save()
        return proc

    # --------------------------------------------------------------------------------------------------- services
    def _postgres(self) -> None:
        bindir, user = pg_bindir(), _unprivileged_user()
        tmp = Path(tempfile.mkdtemp(prefix="tenfold-pg-"))  # /tmp: reachable by the unprivileged user
        password = secrets.token_urlsafe(18)
        (tmp / "pwfile").write_text(password + "\n")
        os.chmod(tmp / "pwfile", 0o600)
        if user:
            pw = pwd.getpwnam(user)
            for p in (tmp, tmp / "pwfile"):
                os.chown(p, pw.pw_uid, pw.pw_gid)
        port = free_port()
        self.state["postgres"] = {"tmpdir": str(tmp), "port": port, "password": password, "user": DB_USER}
        self._save()
        self.logs.mkdir(parents=True, exist_ok=True)
        kw = {"user": user, "group": pwd.getpwnam(user).pw_gid, "extra_groups": []} if user else {}
        init = subprocess.run(
            [
                str(bindir / "initdb"),
                "-D",
                str(tmp / "data"),
                "-U",
                DB_USER,
                "--pwfile",
                str(tmp / "pwfile"),
                "--auth-host=scram-sha-256",
                "--auth-local=peer",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ],
            cwd=tmp,
            capture_output=True,
            text=True,
            timeout=120,
            **kw,
        )
        (self.logs / "initdb.log").write_text(init.stdout + init.stderr)
        if init.returncode != 0:
            raise ServiceError(f"postgres: initdb into {tmp}/data failed ({init.returncode}):\n{init.stderr[-2000:]}")
        url = f"postgresql://{DB_USER}@127.0.0.1:{port}"
        proc = self._start(
            "postgres",
            [
                str(bindir / "postgres"),
                "-D",
                str(tmp / "data"),
                "-p",
                str(port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"unix_socket_directories={tmp}",
                "-c",
                "synchronous_commit=off",
                "-c",
                "max_connections=100",
            ],
            self._base_env(),
            url,
            cwd=tmp,
            user=user,
        )
        self._wait_all(
            [("postgres", lambda: tcp_open("127.0.0.1", port) and pg_ready(port, password) is None, 60, proc)]
        )
        import psycopg

        with psycopg.connect(
            host="127.0.0.1",
            port=port,
            user=DB_USER,
            password=password,
            dbname="postgres",
            autocommit=True,
            connect_timeout=5,
        ) as conn:
            for db in ("mlflow", "prefect"):
                conn.execute(f"CREATE DATABASE {db}")

    def _pg(self) -> dict:
        pg = self.state.get("postgres")
        if not pg:
            raise ServiceError("postgres: not started by this cluster (state.json has no postgres entry)")
        return pg

    def backend_uri(self, db: str, driver: str = "psycopg", password: bool = False) -> str:
        pg = self._pg()
        auth = f"{DB_USER}:{pg['password']}" if password else DB_USER
        return f"postgresql+{driver}://{auth}@127.0.0.1:{pg['port']}/{db}"

    def check_postgres(self) -> None:
        """PostgreSQL must accept a login before a server is pointed at it; else fail at once, naming it."""
        pg = self._pg()
        why = pg_ready(pg["port"], pg["password"])
        if why:
            raise ServiceError(
                f"postgres: PostgreSQL at postgresql://127.0.0.1:{pg['port']} is not accepting "
                f"connections ({why}); start it with `scripts/cluster.sh up`"
            )

    def _mlflow(self) -> list:
        self.check_postgres()
        port, artifacts = free_port(), self.dir / "artifacts"
        artifacts.mkdir(parents=True, exist_ok=True)
        env = self._base_env()
        env["PGPASSWORD"] = self._pg()["password"]  # libpq reads it: the URI and the command line carry no secret
        # MLflow's job runner (GenAI evaluation jobs: 7 huey consumer processes) serves nothing tenfold logs
        env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
        url = f"http://127.0.0.1:{port}"
        proc = self._start(
            "mlflow",
            [
                sys.executable,
                "-m",
                "mlflow",
                "server",
                "--backend-store-uri",
                self.backend_uri("mlflow"),
                "--artifacts-destination",
                str(artifacts),
                "--serve-artifacts",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "2",
            ],
            env,
            url,
        )
        return [("mlflow", lambda: http_ok(f"{url}/health"), 180, proc)]

    def _prefect(self) -> list:
        self.check_postgres()
        port = free_port()
        env = self._base_env()
        env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = self.backend_uri("prefect", "asyncpg", password=True)
        url = f"http://127.0.0.1:{port}/api"
        proc = self._start(
            "prefect",
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env,
            url,
        )
        return [("prefect", lambda: http_ok(f"{url}/health"), 180, proc)]

    def _worker(self) -> list:
        api = self.state["services"]["prefect"]["url"]
        env = {**self._base_env(), "PREFECT_API_URL": api}
        r = subprocess.run(
            [sys.executable, "-m", "prefect", "work-pool", "create", self.pool, "--type", "process", "--overwrite"],
            env=env,
            cwd=self.checkout,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if r.returncode != 0:
            raise ServiceError(
                f"worker: `prefect work-pool create {self.pool} --type process` failed at {api}:\n"
                f"{(r.stdout + r.stderr)[-2000:]}"
            )
        self.state["pool"] = self.pool
        # the worker's flow runs see the whole stack (MLflow server, Dask) through its environment
        env.update(self.client_env())
        env.update(PREFECT_WORKER_QUERY_SECONDS="2", PREFECT_WORKER_PREFETCH_SECONDS="5")
        proc = self._start(
            "worker",
            [
                sys.executable,
                "-m",
                "prefect",
                "worker",
                "start",
                "--pool",
                self.pool,
                "--type",
                "process",
                "--name",
                f"{self.pool}-worker-1",
            ],
            env,
            f"{api}/work_pools/{self.pool}",
        )
        return [("worker", lambda: pool_ready(api, self.pool), 90, proc)]

    def _dask_env(self) -> dict:
        env = {**self._base_env(), **{k: v for k, v in self.client_env().items() if k != "TENFOLD_DASK_ADDRESS"}}
        env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
        return env

    def _dask(self) -> list:
        port = free_port()
        addr = f"tcp://127.0.0.1:{port}"
        proc = self._start(
            "dask-scheduler",
            [sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
            self._dask_env(),
            addr,
        )
        return [("dask-scheduler", lambda: tcp_open("127.0.0.1", port), 90, proc)]

    def _dask_workers(self) -> list:
        addr = self.state["services"]["dask-scheduler"]["url"]
        procs = [
            self._start(
                f"dask-worker-{i}",
                [
                    sys.executable,
                    "-m",
                    "dask",
                    "worker",
                    addr,
                    "--name",
                    f"w{i}",
                    "--nworkers",
                    "1",
                    "--nthreads",
                    "1",
                    "--no-dashboard",
                    "--local-directory",
                    str(self.dir / "dask" / f"w{i}"),
                ],
                self._dask_env(),
                addr,
            )
            for i in range(1, self.dask_workers + 1)
        ]
        waits = [(f"dask-worker-{i}", lambda: True, 120, p) for i, p in enumerate(procs, 1)]
        ready = lambda: dask_workers(addr) >= self.dask_workers or any(p.poll() is not None for p in procs)
        return [("dask-scheduler", ready, 120, None), *waits]

    def _wait_all(self, waits: list) -> None:
        """Wait for every (service, ready, timeout, process) at once: the slowest bounds the phase."""
        pending, start = list(waits), time.time()
        while pending:
            for item in list(pending):
                name, ready, timeout, proc = item
                entry = self.state["services"][name]
                if proc is not None and proc.poll() is not None:
                    raise ServiceError(
                        f"{name}: exited with code {proc.returncode} before answering at "
                        f"{entry['url']}; last lines of {entry['log']}:\n{tail(Path(entry['log']))}"
                    )
                if ready():
                    pending.remove(item)
                elif time.time() - start > timeout:
                    raise ServiceError(
                        f"{name}: no answer at {entry['url']} within {timeout:.0f} s; "
                        f"last lines of {entry['log']}:\n{tail(Path(entry['log']))}"
                    )
            if pending:
                time.sleep(0.5)

    # ----------------------------------------------------------------------------------------------------- verbs
    def running(self) -> list[str]:
        return [n for n, e in self.state.get("services", {}).items() if alive(e)]

    def up(self, only: list[str] | None = None) -> dict:
        live = self.running()
        if live:
            raise ServiceError(
                f"cluster in {self.dir} is already up ({', '.join(live)}): `scripts/cluster.sh down` first"
            )
        wanted = set(only or ORDER)
        for name in list(wanted):
            wanted |= set(NEEDS.get(name, ()))
            if name == "worker":
                wanted |= set(NEEDS["prefect"])
        unknown = wanted - set(ORDER)
        if unknown:
            raise ServiceError(f"unknown service(s) {sorted(unknown)} (known: {', '.join(ORDER)})")
        if self.state:  # a previous stack that died without `down`: clear its leftovers (groups, database dir)
            self.down(quiet=True)
        for stale in ("artifacts", "prefect", "dask", "pids"):  # a new stack starts empty
            shutil.rmtree(self.dir / stale, ignore_errors=True)
        self.state = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "checkout": str(self.checkout), "services": {}}
        self._save()
        t0 = time.time()
        # phases: the database; then the servers side by side; then what needs a server (worker, dask workers)
        phases = [["postgres"], ["mlflow", "prefect", "dask"], ["worker", "dask_workers"]]
        try:
            for phase in phases:
                t, waits = time.time(), []
                for name in phase:
                    if name.split("_")[0] in wanted:
                        waits += getattr(self, f"_{name}")() or []
                self._wait_all(waits)
                self.state.setdefault("timings", {})["+".join(phase)] = round(time.time() - t, 1)
        except BaseException:
            self.down(quiet=True)
            raise
        self.state["up_seconds"] = round(time.time() - t0, 1)
        self._save()
        self._write_env()
        return self.state

    def _write_env(self) -> None:
        lines = [f"# written by scripts/cluster.sh up ({self.state['started']}); `source {self.env_file}`"]
        lines += [f"export {k}={v}" for k, v in self.client_env().items()]
        self.env_file.write_text("\n".join(lines) + "\n")

    def down(self, quiet: bool = False, timeout: float = 20) -> list[str]:
        """Stop only the processes `up` recorded (and their process groups), in tiers that undo the start order:
        the worker and Dask workers, then the servers, then PostgreSQL; each tier at once."""
        stopped = []
        services = self.state.get("services", {})
        tiers = [
            [n for n in services if n == "worker" or n.startswith("dask-worker")],
            [n for n in services if n in ("dask-scheduler", "prefect", "mlflow")],
            [n for n in services if n == "postgres"],
        ]
        tiers.append([n for n in services if not any(n in t for t in tiers)])
        for tier in tiers:
            t, live = time.time(), [n for n in tier if alive(services[n])]
            for name in live:
                if name == "postgres":  # SIGINT to the postmaster: PostgreSQL's fast shutdown
                    os.kill(services[name]["pid"], signal.SIGINT)
                else:
                    _signal_group(services[name]["pid"], signal.SIGTERM)
            deadline = time.time() + timeout
            while time.time() < deadline and any(alive(services[n]) for n in live):
                for n in live:
                    _reap(services[n]["pid"])
                time.sleep(0.2)
            for name in tier:
                entry = services[name]
                if name in live:
                    if alive(entry):
                        _signal_group(entry["pid"], signal.SIGKILL)
                    stopped.append(name)
                _signal_group(entry["pid"], signal.SIGKILL, leader_dead_only=True)  # leftovers of its group
                (self.pids / f"{name}.pid").unlink(missing_ok=True)
                if not quiet:
                    print(
                        f"cluster: stopped {name} (pid {entry['pid']}, {time.time() - t:.1f} s)"
                        if name in live
                        else f"cluster: {name} (pid {entry['pid']}) was not running"
                    )
        pg = self.state.get("postgres")
        if pg:
            shutil.rmtree(pg["tmpdir"], ignore_errors=True)
        self.state = {}
        self.state_file.unlink(missing_ok=True)
        self.env_file.unlink(missing_ok=True)
        return stopped

    def status(self) -> dict[str, dict]:
        out = {}
        for name, e in self.state.get("services", {}).items():
            answering = False
            if alive(e):
                url = e["url"]
                if name == "postgres":
                    answering = pg_ready(self.state["postgres"]["port"], self.state["postgres"]["password"]) is None
                elif name in ("mlflow", "prefect"):
                    answering = http_ok(f"{url}/health")
                elif name == "worker":
                    answering = pool_ready(self.state["services"]["prefect"]["url"], self.state["pool"])
                else:
                    host, port = url.removeprefix("tcp://").rsplit(":", 1)
                    answering = tcp_open(host, int(port))
            out[name] = {"pid": e["pid"], "url": e["url"], "running": alive(e), "answering": answering, "log": e["log"]}
        return out


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _signal_group(pid: int, sig: int, leader_dead_only: bool = False) -> None:
    """Signal the process group `up` created for a service (start_new_session: pgid == pid)."""
    if leader_dead_only and _starttime(pid) is not None:
        return
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def pool_ready(api: str, pool: str) -> bool:
    """A process work pool is READY when at least one worker polls it (Prefect's own status)."""
    try:
        return http_json(f"{api}/work_pools/{pool}", timeout=3).get("status") == "READY"
    except (OSError, urllib.error.URLError, ValueError, AttributeError):
        return False


def dask_workers(address: str) -> int:
    try:
        from distributed import Client

        with Client(address, timeout=5) as c:
            return len(c.scheduler_info(n_workers=-1).get("workers", {}))
    except Exception:  # noqa: BLE001 - not up yet
        return 0


def cluster_dir(arg: str | None = None) -> Path:
    return Path(arg or os.environ.get("TENFOLD_CLUSTER_DIR") or ROOT / ".cluster")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="scripts/cluster.sh", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("verb", choices=["up", "down", "status"])
    ap.add_argument("--dir", default=None, help="state folder (default: $TENFOLD_CLUSTER_DIR or .cluster/)")
    ap.add_argument("--only", default=None, help=f"comma list of services ({', '.join(ORDER)}); default: all")
    ap.add_argument("--pool", default="tenfold", help="Prefect work pool name (default: tenfold)")
    ap.add_argument("--dask-workers", type=int, default=2)
    args = ap.parse_args(argv)
    cluster = Cluster(cluster_dir(args.dir), ROOT, args.pool, args.dask_workers)
    try:
        if args.verb == "up":
            state = cluster.up(args.only.split(",") if args.only else None)
            for name, e in state["services"].items():
                print(f"cluster: {name:15s} {e['url']:45s} pid {e['pid']}")
            print(f"cluster: up in {state['up_seconds']} s; logs in {cluster.logs}; `source {cluster.env_file}`")
        elif args.verb == "down":
            if not cluster.state:
                print(f"cluster: nothing recorded in {cluster.dir} (not up)")
            cluster.down()
        else:
            st = cluster.status()
            if not st:
                print(f"cluster: not up (no state in {cluster.dir})")
                return 3
            for name, s in st.items():
                word = "up" if s["answering"] else ("running, not answering" if s["running"] else "stopped")
                print(f"cluster: {name:15s} {s['url']:45s} pid {s['pid']:<8} {word}")
            return 0 if all(s["answering"] for s in st.values()) else 3
    except ServiceError as e:
        print(f"cluster: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
