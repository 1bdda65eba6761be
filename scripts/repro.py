"""`dvc repro` with independent stages side by side: what `make pipeline` runs (scripts/pipeline.sh).

    python scripts/repro.py --jobs 2       # at most 2 stages at a time (TENFOLD_JOBS in pipeline.sh)
    python scripts/repro.py                # --jobs auto: cores // common.max_workers; 1 = a plain `dvc repro`

CPU slots: with more than one stage at a time, the stages share `cores // common.threads` CPU slots
(tenfold.core.slots, $TENFOLD_CPU_SLOTS): a task's body waits for a free slot, so the stages together never run more
compute threads than there are cores, and when one stage is down to one task, starting up or writing its report, the
other stage's task takes the free core.

Why auto stays cores // common.max_workers (1 on 2 cores): measured on 2 cores, two stages side by side filled the
idle phases (busy 86-89% -> 93-96%), but the studies needed about 10% more CPU seconds, with or without slots: 54.1
min against 53.0 one at a time without slots, 51.9 against 51.9 with them (benchmarks/results.md). Where the cores
outnumber one stage's workers, auto runs several stages and the slots keep them within the cores.

DVC runs the stages of one `dvc repro` one after another. Its documented way to run independent stages at the same
time is one `dvc repro` per stage; `--wait-for-lock` makes each wait for the repository lock DVC holds while it
reads the pipeline and writes dvc.lock, instead of failing. This script does the scheduling:

- which stages to run: the stages `dvc status` reports as changed, plus every stage downstream of one (those only
  change once their upstream has run; DVC still skips one whose inputs came out identical). Nothing changed:
  nothing runs. `--force`: every stage, each with `dvc repro --force` (a from-scratch timing run).
- when: a stage starts once every stage it depends on has finished; among the ready ones, the stage with most
  stages downstream first (the long chains: build_cifar10, craft_poisons, lowkey_faces), then dvc.yaml order.
- how: `dvc --wait-for-lock repro --single-item <stage>`, its output prefixed with `[<stage>]`.
- a failure: no new stage starts, the running ones finish (their work is kept, as in a sequential repro that
  stopped there), and the exit code is the failed stage's; the stages left are listed.
- Ctrl-C or SIGTERM: each running stage's process group gets SIGTERM, then SIGKILL after 15 s (dvc and the stage
  command stop; a stage's checkpoints let the next run resume) and the script exits 130.

Each stage is the same command either way, with its own seeds and explicit generators, so its metrics do not depend
on what runs beside it; only wall times do. A sqlite MLflow store is created before any stage starts (two stages
creating its tables at once would race).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Plan:
    """The stages to run, `needs[s]`: the stages of the plan `s` waits for, in dvc.yaml order."""

    order: list[str]
    needs: dict[str, set[str]]
    downstream: dict[str, int] = field(default_factory=dict)


def make_plan(stages: list[str], upstream: dict[str, set[str]], changed: set[str]) -> Plan:
    """`stages` in dvc.yaml order, `upstream[s]` the stages `s` depends on directly, `changed` what `dvc status`
    reports: the plan runs `changed` and everything downstream of it."""
    unknown = changed - set(stages)
    if unknown:
        raise ValueError(f"dvc status reports stages that are not in dvc.yaml: {sorted(unknown)}")
    below: dict[str, set[str]] = {s: set() for s in stages}  # direct downstream
    for s in stages:
        for u in upstream.get(s, set()):
            below.setdefault(u, set()).add(s)

    def closure(s: str) -> set[str]:
        seen, todo = set(), [s]
        while todo:
            for d in below.get(todo.pop(), ()):
                if d not in seen:
                    seen.add(d)
                    todo.append(d)
        return seen

    run = set(changed)
    for s in changed:
        run |= closure(s)
    order = [s for s in stages if s in run]
    needs = {s: {u for u in upstream.get(s, set()) if u in run} for s in order}
    return Plan(order, needs, {s: len(closure(s) & run) for s in order})


def next_ready(plan: Plan, done: set[str], started: set[str]) -> list[str]:
    """Stages whose upstream has finished, most downstream stages first, then dvc.yaml order."""
    ready = [s for s in plan.order if s not in started and plan.needs[s] <= done]
    return sorted(ready, key=lambda s: (-plan.downstream.get(s, 0), plan.order.index(s)))


def run_plan(plan: Plan, launch, jobs: int, poll: float = 0.2, out=print) -> int:
    """Run `plan` with at most `jobs` stages at a time. `launch(stage)` starts a stage and returns an object with
    `poll()` (None while running, else its exit code), `stop()` and `wait()`. Returns 0, or the first failed
    stage's code."""
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    running: dict[str, object] = {}
    done: set[str] = set()
    started: set[str] = set()
    failed: tuple[str, int] | None = None
    try:
        while len(done) < len(plan.order):
            for s, proc in list(running.items()):
                code = proc.poll()
                if code is None:
                    continue
                del running[s]
                if code == 0:
                    done.add(s)
                elif failed is None:
                    failed = (s, code)
            if failed is not None and not running:
                break
            if failed is None:
                for s in next_ready(plan, done, started):
                    if len(running) >= jobs:
                        break
                    started.add(s)
                    running[s] = launch(s)
            if not running:  # nothing can start: cannot happen with a valid plan, but never spin
                break
            time.sleep(poll)
    except KeyboardInterrupt:
        for proc in running.values():
            proc.stop()
        for proc in running.values():
            proc.wait()
        out("repro: interrupted; stages that finished keep their dvc.lock entries")
        return 130
    if failed is not None:
        left = [s for s in plan.order if s not in done and s != failed[0]]
        out(f"repro: stage {failed[0]!r} failed (exit {failed[1]}); not run: {', '.join(left) or 'none'}")
        return failed[1]
    return 0


class StageProcess:
    """`dvc --wait-for-lock repro --single-item <stage>`, its output lines prefixed with the stage name."""

    def __init__(self, stage: str, root: Path, lock: threading.Lock, force: bool = False):
        self.stage, self.t0 = stage, time.time()
        cmd = [sys.executable, "-m", "dvc", "--wait-for-lock", "repro", "--single-item", *(["--force"] * force), stage]
        # a process group of its own: stopping this script stops the stage's dvc and its command with it
        self.proc = subprocess.Popen(
            cmd,
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,
        )
        self.reader = threading.Thread(target=self._pump, args=(lock,), daemon=True)
        self.reader.start()
        with lock:
            print(f"[{stage}] started: {' '.join(cmd[1:])}", flush=True)

    def _pump(self, lock: threading.Lock) -> None:
        for line in self.proc.stdout:
            with lock:
                sys.stdout.write(f"[{self.stage}] {line}")
                sys.stdout.flush()

    def poll(self) -> int | None:
        code = self.proc.poll()
        if code is not None:
            self.reader.join()
            print(f"[{self.stage}] exit {code} after {time.time() - self.t0:.0f} s", flush=True)
        return code

    def stop(self, grace: float = 15.0) -> None:
        """Stop the stage's whole process group (dvc and the stage command under it): SIGTERM, then SIGKILL after
        `grace` seconds. Not SIGINT: a job started in the background of a non-interactive shell (CI, nohup)
        inherits SIGINT ignored, and so does everything it starts."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.proc.wait(timeout=grace)
                return
            except subprocess.TimeoutExpired:
                continue

    def wait(self) -> int:
        self.proc.wait()
        self.reader.join()
        return self.proc.returncode


def dvc_graph(root: Path) -> tuple[list[str], dict[str, set[str]]]:
    """The dvc.yaml stages in file order and each one's direct upstream stages (DVC's own graph)."""
    import yaml
    from dvc.repo import Repo

    names = list((yaml.safe_load((root / "dvc.yaml").read_text()) or {}).get("stages", {}))
    with Repo(str(root)) as repo:
        graph = repo.index.graph  # edges: stage -> the stages it depends on
        upstream = {s.name: {u.name for u in graph.successors(s)} for s in graph.nodes if hasattr(s, "name")}
    return names, {s: upstream.get(s, set()) for s in names}


def changed_stages(root: Path) -> set[str]:
    """Stages `dvc status` reports (changed deps, params or outs, or never run). Keys are `dvc.yaml:<stage>`."""
    r = subprocess.run(
        [sys.executable, "-m", "dvc", "status", "--json"], cwd=root, capture_output=True, text=True, timeout=600
    )
    if r.returncode != 0:
        raise SystemExit(f"repro: `dvc status` failed ({r.returncode}):\n{r.stderr.strip()}")
    return {k.split(":")[-1] for k in json.loads(r.stdout or "{}")}


def project_common(root: Path):
    """The project's validated `common` params section (its defaults without a params.yaml); a malformed file is a
    clear error naming the key, as for every tenfold command."""
    from tenfold.core.config import Common
    from tenfold.core.errors import TenfoldError
    from tenfold.registry import load_params

    params = root / "params.yaml"
    try:
        return load_params(params, [])["common"] if params.exists() else Common()
    except TenfoldError as e:
        raise SystemExit(f"repro: {e}") from None


def init_mlflow_store(root: Path, common) -> None:
    """Create a sqlite MLflow store's tables once, before stages that would create them at the same time."""
    from tasks.track import tracking_uri

    uri = tracking_uri(common.mlflow_uri)
    if not uri.startswith("sqlite:"):
        return
    from mlflow.tracking import MlflowClient

    cwd = os.getcwd()
    try:
        os.chdir(root)  # a relative sqlite path is the project's
        MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    finally:
        os.chdir(cwd)


def auto_jobs(root: Path, cores: int | None = None, common=None) -> int:
    """Stages at a time that the cores hold with every stage's workers: cores // common.max_workers, at least 1."""
    return max(1, (cores or os.cpu_count() or 1) // (common or project_common(root)).max_workers)


@contextlib.contextmanager
def cpu_slots(common, cores: int | None = None):
    """$TENFOLD_CPU_SLOTS for the stages: a fresh folder of `cores // common.threads` slot files, removed after."""
    from tenfold.core import slots

    n = slots.count(cores, common.threads)
    with tempfile.TemporaryDirectory(prefix="tenfold-slots-") as d:
        slots.create(d, n)
        before = os.environ.get(slots.ENV)
        os.environ[slots.ENV] = d
        try:
            yield n
        finally:
            if before is None:
                os.environ.pop(slots.ENV, None)
            else:
                os.environ[slots.ENV] = before


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", default="auto", help="stages at a time, or auto (cores // common.max_workers)")
    ap.add_argument(
        "--force", action="store_true", help="run every stage (`dvc repro --force`), not only the changed ones"
    )
    ap.add_argument("--root", default=str(Path(__file__).resolve().parents[1]), help="the project (default: here)")
    args = ap.parse_args(argv)
    root = Path(args.root)
    common = project_common(root)
    try:
        args.jobs = auto_jobs(root, common=common) if args.jobs == "auto" else int(args.jobs)
    except ValueError:
        ap.error(f"--jobs must be a number or auto, got {args.jobs!r}")
    if args.jobs < 1:
        ap.error(f"--jobs must be >= 1, got {args.jobs}")
    if args.jobs == 1:  # one stage at a time: DVC's own sequential repro
        cmd = [sys.executable, "-m", "dvc", "repro", *(["--force"] * args.force)]
        print(f"repro: one stage at a time: {' '.join(cmd[1:])}", flush=True)
        os.chdir(root)
        os.execv(sys.executable, cmd)
    stages, upstream = dvc_graph(root)
    changed = set(stages) if args.force else changed_stages(root) & set(stages)  # not .dvc files: none here
    plan = make_plan(stages, upstream, changed)
    if not plan.order:
        print("repro: every stage is up to date", flush=True)
        return 0
    init_mlflow_store(root, common)
    lock = threading.Lock()
    t0 = time.time()
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` of this script: stop the stages as Ctrl-C does
    with cpu_slots(common) as n:
        print(
            f"repro: {len(plan.order)} stages, {args.jobs} at a time, {n} CPU slots: {', '.join(plan.order)}",
            flush=True,
        )
        code = run_plan(plan, lambda s: StageProcess(s, root, lock, args.force), args.jobs)
    print(f"repro: {'done' if code == 0 else 'stopped'} after {time.time() - t0:.0f} s", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
