"""Scheduled runs go through DVC (flows/deploy.py): what is deployed on which schedule, the params a yearly run sets,
bad servers failing in seconds, and (slow) deployments served against a real Prefect server on a maze-only project
copy: two scheduled runs in a row, the second does nothing and `dvc status` stays clean; the first pushed to the DVC
remote (a local directory), so a fresh clone's `dvc pull` gets everything and its `dvc repro` has nothing to do."""

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
import yaml

from flows.deploy import (
    DATE,
    FLOW_NAME,
    ReproFailed,
    ServiceUnavailable,
    check_prefect,
    deploy_to_pool,
    deployment_specs,
    repro_flow,
    trigger,
    write_params,
)
from tenfold.registry import NIGHTLY, STUDIES, YEARLY
from tests.support.project import dvc_status, git, maze_project, run

ROOT = Path(__file__).resolve().parents[2]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens there


def test_one_deployment_per_study_on_its_registry_schedule(root):
    specs = {s["name"]: s for s in deployment_specs(str(root / "params.yaml"), str(root))}
    maze = specs["maze"]
    assert maze["cron"] == NIGHTLY == STUDIES["maze"].schedule
    assert maze["parameters"]["targets"] == ["build_mazes", "maze"]
    assert maze["parameters"]["root"] == str(root) and maze["parameters"]["commit"] and maze["parameters"]["push"]
    assert "set_params" not in maze["parameters"]
    # OpenReview: yearly, and the run sets a new snapshot (its scrape stage's param) instead of bypassing DVC
    orv = specs["openreview"]
    assert orv["cron"] == YEARLY == STUDIES["openreview"].schedule
    assert orv["parameters"]["targets"] == ["scrape_openreview", "openreview"]
    assert orv["parameters"]["set_params"] == {"openreview.snapshot": DATE}
    assert specs["report"]["parameters"] == {
        **specs["report"]["parameters"],
        "targets": ["report"],
        "single_item": True,
    }
    assert specs["build_cifar10"]["parameters"]["targets"] == ["build_cifar10"]
    assert set(specs) == {"build_cifar10", "report", *STUDIES}
    assert {s["cron"] for s in deployment_specs(str(root / "params.yaml"), str(root), cron="*/5 * * * *")} == {
        "*/5 * * * *"
    }


def test_snapshot_param_invalidates_the_scrape_stage(root):
    from tenfold.studies.openreview.params import OpenReviewParams

    stage = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]["scrape_openreview"]
    assert "openreview.snapshot" in stage["params"]
    assert yaml.safe_load((root / "params.yaml").read_text())["openreview"]["snapshot"] == OpenReviewParams().snapshot


def test_write_params_sets_the_date_keeps_comments_and_validates(tmp_path, root):
    from datetime import date

    from tenfold.core.config import ParamsError

    p = tmp_path / "params.yaml"
    p.write_text((root / "params.yaml").read_text())
    today = date.today().isoformat()
    assert write_params(p, {"openreview.snapshot": DATE}) == {"openreview.snapshot": today}
    text = p.read_text()
    assert f"snapshot: '{today}'" in text and "# tenfold params" in text  # quoted: YAML would read a date
    assert yaml.safe_load(text)["openreview"]["snapshot"] == today
    with pytest.raises(ParamsError, match="openreview.snapshott"):
        write_params(p, {"openreview.snapshott": "x"})
    assert f"snapshot: '{today}'" in p.read_text()  # nothing written on a bad key


@pytest.mark.slow  # a dozen dvc/git calls: ~10 s
def test_a_new_snapshot_reruns_the_scrape_through_dvc_and_a_failed_run_restores_params(tmp_path):
    """The yearly mechanism on a two-stage DVC project (no ML): the snapshot param is what makes DVC rerun."""
    proj = tmp_path / "p"
    proj.mkdir()
    (proj / "params.yaml").write_text("common:\n  seed: 0\nopenreview:\n  snapshot: initial   # label\n")
    (proj / "dvc.yaml").write_text(
        "stages:\n  scrape:\n    cmd: python -c \"print('scraped')\" > out.txt\n"
        "    params: [openreview.snapshot]\n    outs: [out.txt]\n"
        "  broken:\n    cmd: python -c 'raise SystemExit(3)'\n    params: [common.seed]\n"
    )
    run(["git", "init", "-q"], proj)
    run([sys.executable, "-m", "dvc", "init", "-q"], proj)
    git(proj, "add", "-A")
    git(proj, "commit", "-qm", "init")
    yearly = {"openreview.snapshot": DATE}
    first = repro_flow.fn(["scrape"], root=str(proj), push=False, set_params=yearly)
    assert first["ran"] == ["scrape"] and first["commit"] and "up to date" in first["status"]
    assert "snapshot:" in git(proj, "show", "HEAD", "--", "params.yaml")  # committed with dvc.lock
    same = repro_flow.fn(["scrape"], root=str(proj), push=False, set_params=yearly)
    assert same["ran"] == [] and same["commit"] is None  # the same date: nothing is stale
    later = repro_flow.fn(["scrape"], root=str(proj), push=False, set_params={"openreview.snapshot": "2099-02-01"})
    assert later["ran"] == ["scrape"] and later["params_set"] == {"openreview.snapshot": "2099-02-01"}
    before = (proj / "params.yaml").read_text()
    with pytest.raises(ReproFailed, match="dvc repro broken"):
        repro_flow.fn(["broken"], root=str(proj), set_params={"openreview.snapshot": "2100-02-01"})
    assert (proj / "params.yaml").read_text() == before


def test_repro_outside_a_dvc_project_names_the_root(tmp_path):
    with pytest.raises(ReproFailed, match="no dvc.yaml"):
        repro_flow.fn(["maze"], root=str(tmp_path))


def test_a_prefect_server_that_is_down_fails_in_seconds_naming_it():
    url = f"http://127.0.0.1:{_closed_port()}/api"
    t = time.time()
    with pytest.raises(ServiceUnavailable, match=f"Prefect server at {url} is not answering"):
        check_prefect(url)
    assert time.time() - t < 5


def test_deploy_cli_against_a_stopped_server_prints_one_line(capsys):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.cli import main

    url = f"http://127.0.0.1:{_closed_port()}/api"
    t = time.time()
    with temporary_settings({PREFECT_API_URL: url}):
        assert main(["deploy", "--pool", "tenfold"]) == 2
        assert main(["deploy"]) == 2
    err = capsys.readouterr().err
    assert f"Prefect server at {url} is not answering" in err and err.count("tenfold: error:") == 2
    assert time.time() - t < 10


# ------------------------------------------------------------------------------------------------------ slow path
def _free_port() -> int:
    return _closed_port()


def _wait_healthy(url: str, proc, timeout: float = 180) -> None:
    t = time.time()
    while time.time() - t < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"prefect server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise TimeoutError("prefect server did not become healthy")


def _stop(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.slow
def test_served_schedules_run_dvc_repro_and_a_second_run_does_nothing(tmp_path, copy_project):
    proj = maze_project(tmp_path / "proj", copy_project)
    remote = tmp_path / "remote"  # the README's S3 remote works the same way (`dvc remote add -d storage s3://...`)
    run([sys.executable, "-m", "dvc", "remote", "add", "-d", "storage", str(remote)], proj)
    git(proj, "commit", "-qam", "DVC remote")
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = dict(
        os.environ,
        PREFECT_HOME=str(tmp_path / "prefect"),
        PREFECT_API_URL=api,
        PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="2",
        PREFECT_RUNNER_POLL_FREQUENCY="2",
    )
    for k in ("MLFLOW_TRACKING_URI", "TENFOLD_DASK_ADDRESS", "GIT_INDEX_FILE"):
        env.pop(k, None)
    server_env = {k: v for k, v in env.items() if k != "PREFECT_API_URL"}
    server = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=server_env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    served = None
    try:
        _wait_healthy(api, server)
        # `tenfold deploy` (serve) from the project: this process runs the scheduled `dvc repro` flows
        served = subprocess.Popen(
            [sys.executable, "-m", "flows.cli", "deploy"],
            env=env,
            cwd=proj,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.actions import WorkPoolCreate
        from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
        from prefect.deployments import run_deployment
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings({PREFECT_API_URL: api}):
            deadline, names = time.time() + 120, {}
            while time.time() < deadline and "maze" not in names:
                with get_client(sync_client=True) as c:
                    names = {d.name: d for d in c.read_deployments()}
                time.sleep(2)
            assert set(names) == {"maze"}, names  # the project has the maze stages only
            dep = names["maze"]
            assert dep.parameters["targets"] == ["build_mazes", "maze"]
            with get_client(sync_client=True) as c:
                schedules = c.read_deployment_schedules(dep.id)
            assert schedules and schedules[0].schedule.cron == NIGHTLY
            # the scheduler creates upcoming runs (broken by sqlalchemy 2.1: see ../shared/README.md)
            scheduled, deadline = [], time.time() + 90
            while time.time() < deadline and not scheduled:
                with get_client(sync_client=True) as c:
                    scheduled = c.read_flow_runs(
                        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[dep.id]))
                    )
                time.sleep(2)
            assert scheduled and all(r.state_type.value == "SCHEDULED" for r in scheduled)

            # two scheduled runs in a row: the first reproduces and commits, the second finds nothing stale
            commits = git(proj, "rev-list", "--count", "HEAD")
            first = run_deployment(f"{FLOW_NAME}/maze", timeout=900)
            assert first.state.is_completed(), first.state
            assert dvc_status(proj) == {}
            assert (proj / "data" / "mazes" / "train_5.npz").exists() and (proj / "metrics" / "maze.json").exists()
            assert int(git(proj, "rev-list", "--count", "HEAD")) == int(commits) + 1
            assert "scheduled dvc repro build_mazes maze" in git(proj, "log", "-1", "--format=%s")
            assert git(proj, "status", "--porcelain") == ""
            assert any(p.is_file() for p in remote.rglob("*")), "the scheduled run pushed nothing to the DVC remote"
            lock = (proj / "dvc.lock").read_text()
            metrics = json.loads((proj / "metrics" / "maze.json").read_text())
            second = run_deployment(f"{FLOW_NAME}/maze", timeout=600)
            assert second.state.is_completed(), second.state
            assert dvc_status(proj) == {}
            assert (proj / "dvc.lock").read_text() == lock
            assert json.loads((proj / "metrics" / "maze.json").read_text()) == metrics
            assert int(git(proj, "rev-list", "--count", "HEAD")) == int(commits) + 1  # nothing new to commit

            # a work pool nobody polls: deploying works (runs wait for a worker), triggering fails at once
            with get_client(sync_client=True) as c:
                c.create_work_pool(WorkPoolCreate(name="nobody", type="process"))
            deployed = deploy_to_pool("nobody", params_path=str(proj / "params.yaml"), root=str(proj))
            assert [s["name"] for s in deployed] == ["maze"]
            t = time.time()
            with pytest.raises(ServiceUnavailable, match=f"no worker polls work pool 'nobody' at {api}"):
                trigger("maze", "nobody")
            with pytest.raises(ServiceUnavailable, match="work pool 'missing' does not exist"):
                trigger("maze", "missing")
            assert time.time() - t < 10
    finally:
        for p in (served, server):
            if p is not None:
                _stop(p)

    # a fresh clone gets the data and models from the DVC remote, and then has nothing to reproduce
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(proj), str(clone)], tmp_path)
    home = {"PREFECT_HOME": str(tmp_path / "prefect")}
    assert not (clone / "data" / "mazes").exists() and not (clone / "models" / "maze").exists()
    run([sys.executable, "-m", "dvc", "pull"], clone, home)
    for f in ("data/mazes/train_5.npz", "models/maze/recurrent.pt"):
        assert (clone / f).read_bytes() == (proj / f).read_bytes(), f
    status = dvc_status(clone, home)
    assert status == {}
    again = run([sys.executable, "-m", "dvc", "repro"], clone, home)
    assert "Running stage" not in again.stdout and "up to date" in again.stdout.lower(), again.stdout
    assert git(clone, "status", "--porcelain") == ""
