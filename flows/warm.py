"""A warm interpreter for the pipeline's stages: import torch, prefect and mlflow once, fork a process per stage.

Every DVC stage is `python -m flows.cli run <stage>`, a new interpreter that spends 7-10 s importing torch,
torchvision, prefect and mlflow (and, inside the flow, `torch._dynamo` through `torch.optim` and `torch.export`
through MLflow's model logging) before it computes anything, and 2-3 s tearing those modules down at exit.
`scripts/pipeline.sh` starts this server once per `make pipeline`:

    python -m flows.warm serve /tmp/tenfold-warm-XXXX/sock      # imports the libraries, then waits
    TENFOLD_WARM=/tmp/tenfold-warm-XXXX/sock dvc repro           # each stage's command asks it for a process

With `TENFOLD_WARM` set, `python -m flows.cli run <stage>` (the client: `delegate`) hands its arguments,
working directory, environment and standard streams to the server, which forks a child that runs exactly what the
command would have run in its own interpreter. The client relays Ctrl-C and SIGTERM to the child, dies with it (a
client killed outright takes its child with it), and exits with the child's code, so DVC sees an ordinary command.

What the child shares with the server is only third-party code imported before any work was done: no thread of
the server's has run torch's thread pool, prefect's event loop or an MLflow client. The project's own modules
(`tenfold`, `flows`, `tasks`) are imported by each child afresh, so an edit between two stages is seen as a new
interpreter would see it. Libraries read some settings from the environment when imported (Prefect's API URL,
MLflow's, torch's and OpenMP's thread variables), so the server runs a stage only when the client's environment
matches its own but for variables the libraries do not read at import (`TENFOLD_*`, DVC's, the shell's) and only
in the directory it was started in; otherwise it refuses with the names of the variables that differ (never
their values) and the client runs the stage in its own interpreter, as it does when no server answers. Each child
reseeds Python's, numpy's and torch's global generators at random, as a new interpreter starts them (a fork would
repeat the server's streams; the studies draw from their own seeded generators either way, so metrics are the same
warm or cold).
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import os
import select
import signal
import socket
import struct
import sys
import time

ENV = "TENFOLD_WARM"
# imported once by the server: the libraries every stage needs, in the order a stage imports them
PRELOAD = (
    "numpy",
    "torch",
    "torch.optim",
    "torch._dynamo",
    "torch.export",
    "torchvision",
    "prefect",
    "prefect.flows",
    "prefect.flow_engine",
    "prefect.task_engine",
    "prefect.task_runners",
    "prefect.logging",
    "mlflow",
    "mlflow.pytorch",
    "mlflow.tracking",
    "matplotlib.pyplot",
    "PIL.Image",
    "yaml",
    "pydantic",
)
# variables no preloaded library reads at import: they may differ between the server and a stage
FREE_PREFIXES = ("TENFOLD_", "DVC_")
FREE_NAMES = {"PWD", "OLDPWD", "SHLVL", "_", "COLUMNS", "LINES"}
GRACE_S = 15.0  # SIGTERM, then SIGKILL after this long, when a client vanishes
_HEADER = struct.Struct("!I")


def _free(name: str) -> bool:
    return name in FREE_NAMES or name.startswith(FREE_PREFIXES)


def env_mismatch(server: dict[str, str], client: dict[str, str]) -> list[str]:
    """The names of the variables (not their values) whose difference would make a forked stage differ from a new
    interpreter: set in one environment and not the other, or set to another value."""
    names = {k for k in set(server) | set(client) if not _free(k)}
    return sorted(k for k in names if server.get(k) != client.get(k))


def _send(conn: socket.socket, msg: dict) -> None:
    conn.sendall(json.dumps(msg).encode() + b"\n")


def _lines(conn: socket.socket):
    """Newline-delimited JSON messages from a socket until it closes."""
    buf = b""
    while True:
        try:
            chunk = conn.recv(4096)
        except InterruptedError:
            continue
        if not chunk:
            return
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            yield json.loads(line)


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = conn.recv(n - len(out))
        if not chunk:
            raise ConnectionError("client closed the connection mid-request")
        out += chunk
    return out


# ------------------------------------------------------------------------------------------------ the client side


def delegate(argv: list[str], stream=None) -> int | None:
    """Run `argv` (this command line) in a process forked by the warm server at $TENFOLD_WARM and return its exit
    code; None when there is no server, it does not answer, or it refuses (the caller then runs the command
    itself). Only the stage commands (`run`, `report`) are delegated: the others import nothing heavy."""
    path = os.environ.get(ENV)
    if not path or argv[1:2] not in (["run"], ["report"]):
        return None
    stream = stream or sys.stderr
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    pending: list[int] = []

    def relay(signum, _frame):  # Ctrl-C, SIGTERM, SIGHUP go to the stage (queued by the server until it forks)
        pending.append(signum)
        with contextlib.suppress(OSError):
            _send(conn, {"signal": signum})

    old = {s: signal.signal(s, relay) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}

    def cold(why: str) -> None:
        print(f"tenfold: warm worker {path} {why}; running in this process", file=stream, flush=True)
        conn.close()
        for s, h in old.items():
            signal.signal(s, h)
        for s in pending:  # a signal that came while asking: as if no warm worker had been asked
            signal.raise_signal(s)

    try:
        conn.connect(path)
        body = json.dumps({"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)}).encode()
        socket.send_fds(conn, [_HEADER.pack(len(body))], [0, 1, 2])
        conn.sendall(body)
        messages = _lines(conn)
        first = next(messages, None)
    except (OSError, ValueError) as e:
        cold(f"not answering ({getattr(e, 'strerror', None) or e})")
        return None
    if first is None or "pid" not in first:
        cold(f"refused ({(first or {}).get('refused', 'it closed the connection')})")
        return None
    try:
        for msg in messages:
            if "exit" in msg:
                code = int(msg["exit"])
                return 128 - code if code < 0 else code  # killed by signal n: 128 + n, as a shell reports it
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        conn.close()
    print(
        f"tenfold: warm worker {path} lost the stage's process (pid {first['pid']}) without an exit code", file=stream
    )
    return 1


# ------------------------------------------------------------------------------------------------ the server side


def preload(modules=PRELOAD) -> list[str]:
    """Import the libraries; the names that failed to import (a stage then imports what it can itself)."""
    failed = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - an optional library missing only costs its import in each stage
            failed.append(name)
    return failed


def _run_stage(req: dict, fds: list[int], added: dict[str, str], module: str) -> None:
    """In the forked child: become the command `req` describes and exit with its code (never returns)."""
    code = 1
    try:
        with contextlib.suppress(OSError):  # the client relays signals to this group: the stage and what it starts
            os.setpgid(0, 0)
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for target, fd in zip((0, 1, 2), fds):
            os.dup2(fd, target)
            os.close(fd)
        for f in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                f.reconfigure(line_buffering=True)
        os.chdir(req["cwd"])
        os.environ.clear()
        os.environ.update({k: v for k, v in req["env"].items() if k != ENV})
        for k, v in added.items():
            os.environ.setdefault(k, v)
        import random

        import numpy as np

        random.seed()  # a fork repeats the server's streams: draw fresh entropy as a new interpreter does
        np.random.seed()
        if "torch" in sys.modules:
            sys.modules["torch"].seed()  # torch seeds its default generator at random when imported
        sys.argv = list(req["argv"])
        import runpy

        try:
            if module.endswith(".py"):
                runpy.run_path(module, run_name="__main__")
            else:
                runpy.run_module(module, run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            if not isinstance(e.code, int) and e.code is not None:
                print(e.code, file=sys.stderr)
        except KeyboardInterrupt:
            code = 130
        except BaseException:  # noqa: BLE001 - as an interpreter would: the traceback, then exit 1
            import traceback

            traceback.print_exc()
            code = 1
        import atexit

        atexit._run_exitfuncs()  # what the libraries registered (log and event workers drain), then no teardown
    finally:
        for f in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                f.flush()
        os._exit(code & 0xFF)


def _supervise(conn: socket.socket, cwd: str, env: dict[str, str], added: dict[str, str], module: str) -> None:
    """In the per-connection child: check the request, fork the stage, relay signals, report its exit code."""
    header, fds, _flags, _addr = socket.recv_fds(conn, _HEADER.size, 3)
    if len(header) < _HEADER.size:
        header += _recv_exact(conn, _HEADER.size - len(header))
    req = json.loads(_recv_exact(conn, _HEADER.unpack(header)[0]))
    why = []
    if os.path.realpath(req.get("cwd", "")) != os.path.realpath(cwd):
        why.append(f"started in {cwd}, the stage runs in {req.get('cwd')}")
    diff = env_mismatch(env, req.get("env", {}))
    if diff:
        why.append("environment differs in " + ", ".join(diff[:8]) + (" ..." if len(diff) > 8 else ""))
    if len(fds) != 3:
        why.append(f"received {len(fds)} of 3 standard streams")
    what = " ".join(req.get("argv", [])[1:])
    if why:
        print(f"warm: refused `{what}`: {'; '.join(why)}", flush=True)
        _send(conn, {"refused": "; ".join(why)})
        return
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        conn.close()
        _run_stage(req, fds, added, module)
    with contextlib.suppress(OSError):
        os.setpgid(pid, pid)  # also here: a signal relayed before the child ran setpgid must find its group
    for fd in fds:
        os.close(fd)
    _send(conn, {"pid": pid})
    alive, deadline, status, buf = True, None, None, b""
    while status is None:
        if alive and select.select([conn], [], [], 0.2)[0]:
            try:
                chunk = conn.recv(4096)
            except OSError:
                chunk = b""
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                sig = json.loads(line).get("signal")
                if sig:
                    with contextlib.suppress(OSError):
                        os.killpg(pid, int(sig))
            if not chunk:  # the client is gone: stop the stage as Ctrl-C would, then kill it
                alive = False
                with contextlib.suppress(OSError):
                    os.killpg(pid, signal.SIGTERM)
                deadline = time.monotonic() + GRACE_S
        elif not alive:
            time.sleep(0.2)
        if deadline is not None and time.monotonic() > deadline:
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
            deadline = None
        done, st = os.waitpid(pid, os.WNOHANG)
        if done:
            status = st
    code = os.waitstatus_to_exitcode(status)
    gone = "" if alive else " (its client had gone)"
    print(f"warm: `{what}` ran as pid {pid}, exit {code} after {time.monotonic() - started:.1f} s{gone}", flush=True)
    if alive:
        with contextlib.suppress(OSError):
            _send(conn, {"exit": code})


def serve(path: str, ready_file: str | None = None, module: str = "flows.cli", modules=PRELOAD) -> None:
    """Preload `modules`, then fork one supervisor per connection until SIGTERM or SIGINT; each stage runs
    `module` as `python -m <module>` would (the tests use a stand-in)."""
    cwd, env = os.getcwd(), dict(os.environ)  # as the stages' environments are compared: before any import
    failed = preload(modules)
    # what the imports set themselves (torch sets TORCHINDUCTOR_CACHE_DIR): a new interpreter would set it too
    added = {k: v for k, v in os.environ.items() if env.get(k) != v}
    gc.collect()
    gc.freeze()  # the preloaded objects: never scanned again by the children's collections, nor copied on write
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    os.chmod(path, 0o600)  # the environment it receives may hold secrets: this user only
    server.listen(16)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    note = f"; could not import {', '.join(failed)}" if failed else ""
    print(f"warm: {len(sys.modules)} modules imported, serving {path}{note}", flush=True)
    if ready_file:
        with open(ready_file, "w") as f:
            f.write(str(os.getpid()))
    children = set()
    server.settimeout(0.5)
    try:
        while not stop:
            try:
                conn, _ = server.accept()
            except (TimeoutError, InterruptedError):
                conn = None
            if conn is not None:
                conn.settimeout(None)
                pid = os.fork()
                if pid == 0:
                    server.close()
                    try:
                        _supervise(conn, cwd, env, added, module)
                    except BaseException:  # noqa: BLE001 - a broken request ends its own supervisor only
                        import traceback

                        traceback.print_exc()
                    finally:
                        os._exit(0)
                conn.close()
                children.add(pid)
            for pid in list(children):
                with contextlib.suppress(ChildProcessError):
                    if os.waitpid(pid, os.WNOHANG)[0]:
                        children.discard(pid)
    finally:
        server.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        # the supervisors see their stages through (a stage running when the pipeline stops gets its signal from
        # the client, whose stage command DVC stops)


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m flows.warm", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="preload the libraries and serve stage processes on a Unix socket")
    s.add_argument("socket", help="path of the Unix socket to create (its directory must exist)")
    s.add_argument("--ready-file", help="written with the server's pid once it accepts connections")
    s.add_argument(
        "--module",
        default="flows.cli",
        help="what a stage runs, as `python -m MODULE` or `python FILE.py` (default flows.cli)",
    )
    s.add_argument("--no-preload", action="store_true", help="import nothing ahead (tests of the mechanics)")
    args = ap.parse_args(argv)
    serve(args.socket, args.ready_file, args.module, () if args.no_preload else PRELOAD)
    return 0


if __name__ == "__main__":
    sys.exit(main())
