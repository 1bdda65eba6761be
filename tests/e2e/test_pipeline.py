"""End to end: the real pipeline (DVC -> Prefect flows -> MLflow) on a fresh copy of the project at tiny scale."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from tenfold.core.config import deep_merge
from tenfold.registry import STUDIES
from tests.support.cifar import shared_with_cifar_slice

ROOT = Path(__file__).resolve().parents[2]


def _env(proj: Path) -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PREFECT_HOME"] = str(proj / ".prefect")
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("PREFECT_API_URL", None)
    env["TENFOLD_JOBS"] = "2"  # the side-by-side path for real (auto is 1 stage at a time on a 2-core machine)
    return env


def _run(cmd, proj, timeout=1500):
    r = subprocess.run(cmd, cwd=proj, env=_env(proj), capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout[-4000:]}\n{r.stderr[-6000:]}"
    return r


@pytest.fixture(scope="module")
def project(tmp_path_factory, copy_project):
    proj = copy_project(tmp_path_factory.mktemp("e2e") / "proj")
    params = yaml.safe_load((proj / "params.yaml").read_text())
    params = deep_merge(params, yaml.safe_load((proj / "profiles" / "tiny.yaml").read_text()))
    # the shared data beside the project, as in a real checkout, with a CIFAR-10 slice (build_cifar10 runs on it)
    shared_with_cifar_slice(proj.parent / "shared" / "data")
    (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for d in ("metrics", "results", "plots", "reports"):  # outputs must come from this run, not from the copy
        subprocess.run(["rm", "-rf", str(proj / d)], check=True)
    _run(["git", "init", "-q"], proj)
    _run(["git", "add", "-A"], proj)
    _run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "e2e"], proj)
    t = time.time()
    # what `make pipeline` runs: one local Prefect server for every stage, then `dvc repro`
    r = _run(["bash", "scripts/pipeline.sh"], proj)
    assert "running in this process" not in r.stderr, r.stderr[-3000:]  # every stage was a fork of the warm server
    return proj, params, time.time() - t


@pytest.mark.slow
def test_dvc_repro_runs_every_study_with_metrics_reports_and_mlflow(project):
    proj, params, _ = project
    stages = yaml.safe_load((proj / "dvc.yaml").read_text())["stages"]
    studies = [s for s in stages if s in STUDIES]
    assert set(studies) == set(STUDIES)
    client = MlflowClient(f"sqlite:///{proj / 'mlflow.db'}")
    for slug in studies:
        r = json.loads((proj / "results" / f"{slug}.json").read_text())
        m = json.loads((proj / "metrics" / f"{slug}.json").read_text())
        assert r["study"] == slug and r["claims"], slug
        for c in r["claims"]:
            assert set(c) >= {"id", "claim", "paper", "measured", "target", "holds"} and isinstance(c["holds"], bool)
            assert m["claims"][c["id"]] == {k: c[k] for k in ("measured", "target", "holds")}
        assert set(m) == {"claims", *r["headline"]} and len(r["headline"]) <= 20, slug
        report = (proj / "reports" / f"{slug}.md").read_text()
        assert "Paper claims / this run measured" in report
        for c in r["claims"]:
            assert f"`{c['id']}`" in report
        exp = client.get_experiment_by_name(slug)
        assert exp is not None, f"no MLflow experiment for {slug}"
        runs = client.search_runs([exp.experiment_id])
        assert runs and all(run.info.status == "FINISHED" for run in runs)
        for run in runs:  # parent runs and nested ones (benchmark cells) all carry the lineage tags
            tags = run.data.tags
            assert tags["study"] == slug and tags["dvc_stage"] and len(tags["git_commit"]) >= 40, (slug, tags)
            assert tags["machine.cpu"] and tags["machine.torch_threads"] and tags["machine.blas"], (slug, tags)
            assert tags["machine.cpu_family"] and tags["machine.cpu_vector"], (slug, tags)  # not the bare name
        parents = [run for run in runs if "mlflow.parentRunId" not in run.data.tags]
        assert parents and all(any(k.startswith(f"{slug}.") for k in run.data.params) for run in parents), slug
        # the run that published logged the headline numbers and one 0/1 metric per claim, as in the files
        published = client.get_run(r["run"]["mlflow_run_id"])
        for c in r["claims"]:
            assert published.data.metrics[f"claim_{c['id']}"] == float(c["holds"]), (slug, c["id"])
        for k, v in r["headline"].items():
            if v is not None:
                assert published.data.metrics[k] == pytest.approx(float(v)), (slug, k)
        assert published.data.metrics["wall_seconds"] > 0 and published.data.metrics["cpu_seconds"] > 0
        versions = client.search_model_versions(f"name='tenfold-{slug}'")
        assert versions, f"no registered model for {slug}"
    # `dvc metrics show` stays readable: one line per headline number and claim field, no tables or texts
    shown = _run(["dvc", "metrics", "show"], proj).stdout
    assert len(shown.splitlines()) < 250 and "notes" not in shown and "description" not in shown
    maze_tags = client.search_runs([client.get_experiment_by_name("maze").experiment_id])[0].data.tags
    lock = yaml.safe_load((proj / "dvc.lock").read_text())
    data_dep = next(d for d in lock["stages"]["maze"]["deps"] if d["path"] == "data/mazes")
    # the maze run was tagged before dvc.lock existed for it, so the md5 tag comes from a later run; but the
    # dataset inputs always carry the file digests
    run = client.get_run(client.search_runs([client.get_experiment_by_name("maze").experiment_id])[0].info.run_id)
    assert run.inputs.dataset_inputs, "maze run has no dataset lineage"
    assert data_dep["md5"]
    assert (proj / "reports" / "index.md").exists()
    assert maze_tags["data_source"].startswith("generated")
    # the stages were forks of the warm interpreter (flows/warm.py), two at a time here, and all exited 0
    warm_log = (proj / ".prefect" / "warm.log").read_text()
    for stage in stages:
        if stages[stage]["cmd"].startswith("python -m flows.cli run "):
            assert f"`run {stages[stage]['cmd'].split()[-1]}` ran as pid" in warm_log, (stage, warm_log)
    assert ", exit 0 after" in warm_log and "exit 1" not in warm_log and "refused" not in warm_log


@pytest.mark.slow
def test_second_repro_is_a_noop_and_a_maze_param_reruns_only_maze(project):
    proj, params, _ = project
    r = _run(["dvc", "repro"], proj)
    assert "up to date" in (r.stdout + r.stderr).lower() or "didn't change" in r.stdout
    st = json.loads(_run(["dvc", "status", "--json"], proj).stdout or "{}")
    assert st == {}, st
    # `dvc plots show` renders the accuracy-vs-iterations curves declared in dvc.yaml
    shown = json.loads(_run(["dvc", "plots", "show", "--json"], proj).stdout)
    assert not shown.get("errors"), shown.get("errors")
    _run(["dvc", "plots", "show", "-o", "dvc_plots"], proj)
    html = (proj / "dvc_plots" / "index.html").read_text()
    assert "extrapolation_size" in html and "largest_size" in html
    p = yaml.safe_load((proj / "params.yaml").read_text())
    p["maze"]["eval"]["examples"] = 1
    (proj / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    st = json.loads(_run(["dvc", "status", "--json"], proj).stdout or "{}")
    assert "maze" in st and "build_mazes" not in st
    others = [s for s in st if s not in ("maze", "report")]
    assert not others, f"a maze param change would rerun {others}"
    # and a rerun tags the MLflow run with the md5 of the data from dvc.lock
    _run(["dvc", "repro", "maze"], proj)
    client = MlflowClient(f"sqlite:///{proj / 'mlflow.db'}")
    exp = client.get_experiment_by_name("maze")
    newest = client.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"])[0]
    lock = yaml.safe_load((proj / "dvc.lock").read_text())
    md5 = next(d["md5"] for d in lock["stages"]["maze"]["deps"] if d["path"] == "data/mazes")
    assert newest.data.tags["data_md5.data/mazes"] == md5


@pytest.mark.slow
def test_a_dvc_experiment_is_listed_compared_and_applied(project):
    """`dvc exp run -S` on one param: `dvc exp show --only-changed` lists the changed param and the metrics that
    moved, `dvc metrics diff` compares it with the workspace's commit, `dvc plots diff` renders both."""
    proj, _, _ = project
    _run(["dvc", "exp", "run", "-n", "longer-maze", "-S", "maze.train.epochs=4", "maze"], proj)
    shown = json.loads(_run(["dvc", "exp", "show", "--json"], proj).stdout)
    exps = [e for row in shown for e in (row.get("experiments") or []) if e.get("name") == "longer-maze"]
    assert exps, shown
    rev = exps[0]["revs"][0]["data"]
    assert rev["params"]["params.yaml"]["data"]["maze"]["train"]["epochs"] == 4
    assert "claims" in rev["metrics"]["metrics/maze.json"]["data"]
    table = _run(["dvc", "exp", "show", "--only-changed", "--no-pager", "--md"], proj).stdout
    assert "maze.train.epochs" in table and "longer-maze" in table
    diff = json.loads(_run(["dvc", "metrics", "diff", "HEAD", "longer-maze", "--json"], proj).stdout)
    assert "metrics/maze.json" in diff
    _run(["dvc", "plots", "diff", "HEAD", "longer-maze", "-o", "plots_diff"], proj)
    assert (proj / "plots_diff" / "index.html").exists()
    _run(["dvc", "exp", "apply", "longer-maze"], proj)
    assert yaml.safe_load((proj / "params.yaml").read_text())["maze"]["train"]["epochs"] == 4
