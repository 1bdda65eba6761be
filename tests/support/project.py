"""A small real project for the tests of scheduling, DVC remotes and the cluster stack: a copy of this checkout
(as git's index has it) restricted to some studies (by default the maze study: stages build_mazes + maze), at the
tiny profile, committed in a fresh git repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tenfold.core.config import deep_merge

ROOT = Path(__file__).resolve().parents[2]
STAGES = ("build_mazes", "maze")
SHARED = ROOT.parent / "shared" / "data"


def env(
    extra: dict | None = None,
    drop=(
        "MLFLOW_TRACKING_URI",
        "PREFECT_API_URL",
        "TENFOLD_DASK_ADDRESS",
        "GIT_INDEX_FILE",
        "GIT_DIR",
        "GIT_WORK_TREE",
    ),
) -> dict:
    """The environment a command in a test project gets: this venv's python first, no inherited servers or git
    index (a git hook or a private index must not leak into the copy's own repository)."""
    e = dict(os.environ)
    e["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{e.get('PATH', '')}"
    for k in drop:
        e.pop(k, None)
    e.update(extra or {})
    return e


def run(
    cmd: list[str], cwd: Path, extra_env: dict | None = None, timeout: float = 900, check: bool = True
) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, cwd=cwd, env=env(extra_env), capture_output=True, text=True, timeout=timeout)
    if check:
        assert r.returncode == 0, (
            f"{' '.join(map(str, cmd))} failed ({r.returncode}):\n{r.stdout[-4000:]}\n{r.stderr[-6000:]}"
        )
    return r


def git(cwd: Path, *args: str) -> str:
    return run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd).stdout


def maze_project(dst: Path, copy_project, params_extra: dict | None = None) -> Path:
    """`dst` = the project restricted to the maze stages at the tiny profile, committed (`git init`)."""
    return study_project(dst, copy_project, ("maze",), params_extra)


def study_project(dst: Path, copy_project, studies: tuple[str, ...], params_extra: dict | None = None) -> Path:
    """`dst` = the project restricted to `studies` (their params sections and DVC stages, the registry's) at the
    tiny profile, reading the shared data of this checkout, committed (`git init`)."""
    from tenfold.registry import get

    proj = copy_project(dst)
    params = yaml.safe_load((proj / "params.yaml").read_text())
    params = deep_merge(params, yaml.safe_load((proj / "profiles" / "tiny.yaml").read_text()))
    params = deep_merge({k: v for k, v in params.items() if k == "common" or k in studies}, params_extra or {})
    params["common"]["shared_data"] = str(SHARED)  # the copy lives outside this checkout's parent folder
    (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    stages = [s for slug in studies for s in get(slug).stages]
    dvc = yaml.safe_load((proj / "dvc.yaml").read_text())
    (proj / "dvc.yaml").write_text(yaml.safe_dump({"stages": {s: dvc["stages"][s] for s in stages}}, sort_keys=False))
    (proj / "dvc.lock").unlink(missing_ok=True)
    for d in ("metrics", "plots", "reports", "results", "models", "data", "checkpoints"):
        shutil.rmtree(proj / d, ignore_errors=True)  # every output must come from the test's own run
    run(["git", "init", "-q"], proj)
    git(proj, "add", "-A")
    git(proj, "commit", "-qm", "maze project")
    return proj


def dvc_status(proj: Path, extra_env: dict | None = None) -> dict:
    import json

    return json.loads(run([sys.executable, "-m", "dvc", "status", "--json"], proj, extra_env).stdout or "{}")
