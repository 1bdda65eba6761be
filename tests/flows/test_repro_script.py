"""scripts/repro.py, what `make pipeline` runs: which stages it runs (changed ones and everything downstream), in
which order (upstream first, at most `jobs` at a time), what a failure stops; and for real on a small DVC project,
that two independent stages run at the same time and both land in dvc.lock."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def repro():
    spec = importlib.util.spec_from_file_location("tenfold_repro_script", ROOT / "scripts" / "repro.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


# the shape of this project's DAG: data stages, chains, a report over everything
STAGES = ["build_cifar10", "build_mazes", "maze", "smoothing", "craft", "security", "faces", "surrogates", "lowkey",
          "report"]  # fmt: skip
UP = {
    "maze": {"build_mazes"},
    "craft": {"build_cifar10"},
    "security": {"craft"},
    "surrogates": {"faces"},
    "lowkey": {"faces", "surrogates"},
    "report": {"maze", "smoothing", "security", "lowkey"},
}


class Fake:
    """A stage process that ends after `ticks` polls with `code`; records the stages running beside it."""

    def __init__(self, stage, log, running, ticks=2, code=0):
        self.stage, self.left, self.code, self.log, self.running = stage, ticks, code, log, running
        running.add(stage)
        log.append(("start", stage, frozenset(running)))

    def poll(self):
        self.left -= 1
        if self.left > 0:
            return None
        self.running.discard(self.stage)
        self.log.append(("end", self.stage, None))
        return self.code

    def wait(self):
        return self.code


def _run(repro, plan, jobs, codes=None, ticks=None):
    log, running = [], set()
    code = repro.run_plan(
        plan,
        lambda s: Fake(s, log, running, (ticks or {}).get(s, 2), (codes or {}).get(s, 0)),
        jobs,
        poll=0,
        out=lambda m: log.append(("msg", m, None)),
    )
    return code, log


def test_plan_runs_changed_stages_and_everything_downstream_only(repro):
    plan = repro.make_plan(STAGES, UP, {"faces"})
    assert plan.order == ["faces", "surrogates", "lowkey", "report"]
    assert plan.needs == {"faces": set(), "surrogates": {"faces"}, "lowkey": {"faces", "surrogates"},
                          "report": {"lowkey"}}  # fmt: skip
    assert repro.make_plan(STAGES, UP, set()).order == []
    assert repro.make_plan(STAGES, UP, set(STAGES)).order == STAGES
    with pytest.raises(ValueError, match="not in dvc.yaml"):
        repro.make_plan(STAGES, UP, {"nope"})


def test_upstream_first_at_most_jobs_at_a_time_long_chains_first(repro):
    plan = repro.make_plan(STAGES, UP, set(STAGES))
    code, log = _run(repro, plan, jobs=2)
    assert code == 0
    starts = [s for kind, s, _ in log if kind == "start"]
    ends = [s for kind, s, _ in log if kind == "end"]
    assert sorted(starts) == sorted(STAGES) and sorted(ends) == sorted(STAGES)
    at = {(kind, s): i for i, (kind, s, _) in enumerate(log) if kind != "msg"}
    for s, ups in UP.items():  # every stage starts after all its upstream stages ended
        assert all(at["end", u] < at["start", s] for u in ups), s
    assert max(len(r) for kind, _, r in log if kind == "start") == 2
    assert any(len(r) == 2 for kind, _, r in log if kind == "start")  # stages did run side by side
    assert starts[:2] == ["build_cifar10", "faces"]  # the most stages downstream first (then dvc.yaml order)
    assert starts[-1] == "report"
    _, one = _run(repro, plan, jobs=1)
    assert max(len(r) for kind, _, r in one if kind == "start") == 1


def test_a_failure_starts_nothing_new_lets_running_stages_finish_and_returns_its_code(repro):
    plan = repro.make_plan(STAGES, UP, set(STAGES))
    code, log = _run(repro, plan, jobs=2, codes={"craft": 3}, ticks={"craft": 1, "faces": 5})
    assert code == 3
    started = [s for kind, s, _ in log if kind == "start"]
    assert "security" not in started and "report" not in started
    assert ("end", "faces", None) in log  # the stage running beside the failure finished, not killed
    msg = [m for kind, m, _ in log if kind == "msg"][-1]
    assert "'craft' failed (exit 3)" in msg and "security" in msg and "report" in msg
    with pytest.raises(ValueError, match="jobs must be >= 1"):
        repro.run_plan(plan, lambda s: None, 0)


def _git(cwd, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True,
                   capture_output=True)  # fmt: skip


@pytest.mark.slow
def test_real_dvc_project_runs_independent_stages_together_and_records_all_of_them(tmp_path):
    """Two 3-second stages and one over both: side by side they take about 3 s, not 6; dvc.lock has every stage
    and `dvc status` is clean; a second run has nothing to do, `--force` reruns everything; a failing stage fails
    the run with dvc's code."""
    code = (
        "import time, sys, os; t = time.time(); time.sleep(3); open(sys.argv[1], 'w').write(str(t)); "
        "d = os.environ.get('TENFOLD_CPU_SLOTS'); open(sys.argv[1] + '.slots', 'w').write("
        "f'{len(os.listdir(d))} {d}' if d else 'off')"
    )
    stamp = f'{sys.executable} -c "{code}"'
    dvc = {
        "stages": {
            "a": {"cmd": f"{stamp} a.txt", "outs": ["a.txt"]},
            "b": {"cmd": f"{stamp} b.txt", "outs": ["b.txt"]},
            "c": {"cmd": "cat a.txt b.txt > c.txt", "deps": ["a.txt", "b.txt"], "outs": ["c.txt"]},
        }
    }
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(dvc, sort_keys=False))
    (tmp_path / "params.yaml").write_text("common:\n  mlflow_uri: sqlite:///mlflow.db\n")
    _git(tmp_path, "init", "-q")
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=tmp_path, check=True)
    script = [sys.executable, str(ROOT / "scripts" / "repro.py"), "--root", str(tmp_path), "--jobs", "2"]
    r = subprocess.run(script, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    ta, tb = float((tmp_path / "a.txt").read_text()), float((tmp_path / "b.txt").read_text())
    assert abs(ta - tb) < 2.5, (ta, tb)  # started together (one after the other: >= 3 s apart)
    assert (tmp_path / "mlflow.db").exists()  # the sqlite store was created before the stages
    assert set(yaml.safe_load((tmp_path / "dvc.lock").read_text())["stages"]) == {"a", "b", "c"}
    status = subprocess.run([sys.executable, "-m", "dvc", "status", "--json"], cwd=tmp_path, capture_output=True,
                            text=True)  # fmt: skip
    assert json.loads(status.stdout or "{}") == {}
    assert "[c] " in r.stdout and "stages, 2 at a time" in r.stdout
    # the stages shared cores // threads CPU slots (threads: 1 by default), removed after the run
    n, folder = (tmp_path / "a.txt.slots").read_text().split()
    assert int(n) == os.cpu_count() and (tmp_path / "b.txt.slots").read_text() == f"{n} {folder}"
    assert not Path(folder).exists()
    t = time.time()
    again = subprocess.run(script, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "every stage is up to date" in again.stdout and time.time() - t < 60
    forced = subprocess.run([*script, "--force"], capture_output=True, text=True, timeout=300)
    assert forced.returncode == 0 and "3 stages" in forced.stdout, forced.stdout
    assert float((tmp_path / "a.txt").read_text()) > ta and float((tmp_path / "b.txt").read_text()) > tb
    before = float((tmp_path / "a.txt").read_text())
    one = subprocess.run([*script[:-2], "--jobs", "1", "--force"], capture_output=True, text=True, timeout=300)
    assert one.returncode == 0 and "one stage at a time" in one.stdout, one.stdout + one.stderr
    assert float((tmp_path / "a.txt").read_text()) > before  # DVC's own sequential repro ran it again
    assert (tmp_path / "a.txt.slots").read_text() == "off"  # one stage at a time: no slots
    dvc["stages"]["b"]["cmd"] = f'{sys.executable} -c "import sys; sys.exit(4)"'
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(dvc, sort_keys=False))
    bad = subprocess.run(script, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 255 and "'b' failed (exit 255)" in bad.stdout  # what `dvc repro` exits with
    assert "exited with 4" in bad.stdout and "not run: c" in bad.stdout, bad.stdout


def test_make_pipeline_passes_jobs_to_the_scheduler_and_one_job_is_a_plain_repro():
    """`make pipeline JOBS=3` sets TENFOLD_JOBS=3 (default 2) for scripts/pipeline.sh, which runs scripts/repro.py
    with it, and a plain `dvc repro` for JOBS=1 or with arguments."""
    dry = subprocess.run(["make", "-n", "pipeline", "JOBS=3", "FORCE=1"], cwd=ROOT, capture_output=True, text=True)
    assert "TENFOLD_JOBS=3 TENFOLD_FORCE=1 bash scripts/pipeline.sh" in dry.stdout
    dry = subprocess.run(["make", "-n", "pipeline"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert "TENFOLD_JOBS=auto TENFOLD_FORCE= bash scripts/pipeline.sh" in dry.stdout
    sh = (ROOT / "scripts" / "pipeline.sh").read_text()
    assert 'python scripts/repro.py --jobs "$jobs" ${TENFOLD_FORCE:+--force}' in sh
    assert 'if [ "$#" -gt 0 ]; then\n  dvc repro "$@"' in sh


def test_auto_jobs_keep_the_stages_workers_within_the_cores(repro, tmp_path):
    """auto = cores // common.max_workers, at least 1: one stage at a time on 2 cores with 2 workers (measured there:
    side by side cost more CPU than it saved, with or without CPU slots), 2 on 4 cores."""
    (tmp_path / "params.yaml").write_text("common:\n  max_workers: 2\n")
    assert [repro.auto_jobs(tmp_path, c) for c in (1, 2, 3, 4, 8)] == [1, 1, 1, 2, 4]
    (tmp_path / "params.yaml").write_text("common:\n  max_workers: 3\n")
    assert repro.auto_jobs(tmp_path, 8) == 2
    (tmp_path / "params.yaml").write_text("common:\n  max_workers: many\n")
    with pytest.raises(SystemExit, match="max_workers"):
        repro.auto_jobs(tmp_path, 4)
    (tmp_path / "params.yaml").unlink()
    assert repro.auto_jobs(tmp_path, 4) == 2  # the params default


@pytest.mark.slow
def test_sigterm_stops_the_running_stages_and_exits_130(tmp_path):
    """`kill` of the script (what a scheduler or CI timeout sends) stops the running stage's dvc and command, which
    would otherwise run on as orphans, and exits 130, also where SIGINT is ignored (a background job)."""
    code = "import time, os; open('pid', 'w').write(str(os.getpid())); time.sleep(120)"
    dvc = {"stages": {"slow": {"cmd": f'{sys.executable} -c "{code}" && touch out.txt', "outs": ["out.txt"]}}}
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(dvc))
    (tmp_path / "params.yaml").write_text("common:\n  mlflow_uri: sqlite:///mlflow.db\n")
    _git(tmp_path, "init", "-q")
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=tmp_path, check=True)
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "repro.py"), "--root", str(tmp_path), "--jobs", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # as under CI or nohup: a background job inherits SIGINT ignored (a SIGINT to the stages then did nothing)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    deadline = time.time() + 60
    while not (tmp_path / "pid").exists() or not (tmp_path / "pid").read_text():
        assert time.time() < deadline and proc.poll() is None, "the stage never started"
        time.sleep(0.2)
    stage_pid = int((tmp_path / "pid").read_text())
    proc.terminate()
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in out, out
    time.sleep(1)
    with pytest.raises(ProcessLookupError):
        os.kill(stage_pid, 0)  # the stage command is gone too
    assert not (tmp_path / "out.txt").exists()
