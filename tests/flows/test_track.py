import os
from pathlib import Path

import torch
import yaml
from mlflow.tracking import MlflowClient

from tasks.track import ALIAS, dvc_data_hashes, study_run
from tenfold.registry import load_params

ROOT = Path(__file__).resolve().parents[2]


def test_run_has_lineage_tags_params_and_alias_only_when_passed(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("OPENREVIEW_PASSWORD", "hunter2-secret")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    lock = tmp_path / "dvc.lock"
    lock.write_text(
        yaml.safe_dump(
            {
                "schema": "2.0",
                "stages": {
                    "maze": {
                        "cmd": "x",
                        "deps": [{"path": "data/mazes", "md5": "abc123.dir"}, {"path": "flows/maze.py", "md5": "code"}],
                    }
                },
            }
        )
    )
    secs = load_params(ROOT / "params.yaml", ["maze"])
    model = torch.nn.Linear(3, 2)
    with study_run("maze", secs, stage="maze", uri=uri, lock=lock) as run:
        run.log_metrics({"acc": 0.5}, step=1)
        first = run.log_model(model, "m", passed=False)
    with study_run("maze", secs, stage="maze", uri=uri, lock=lock) as run2:
        second = run2.log_model(model, "m", passed=True)
        cell = run2.child("cell 1", {"attack": "badnets"})
    c = MlflowClient(uri)
    r = c.get_run(run.run_id)
    assert r.info.status == "FINISHED"
    t = r.data.tags
    assert t["study"] == "maze" and t["arxiv"] == "2102.11011" and t["dvc_stage"] == "maze"
    assert t["git_commit"] and t["data_md5.data/mazes"] == "abc123.dir"
    assert "data_md5.flows/maze.py" not in t  # code deps are not data
    assert r.data.params["maze.train.epochs"] == str(secs["maze"].train.epochs)
    assert r.data.metrics["acc"] == 0.5
    assert first["alias"] is None and second["alias"] == ALIAS
    assert str(c.get_model_version_by_alias("tenfold-maze", ALIAS).version) == second["version"]
    ct = c.get_run(cell).data.tags
    assert ct["mlflow.parentRunId"] == run2.run_id and ct["attack"] == "badnets"
    assert ct["dvc_stage"] == "maze" and ct["data_md5.data/mazes"] == "abc123.dir" and ct["git_commit"]
    # no secret anywhere in params or tags
    blob = str(r.data.params) + str(r.data.tags) + str(c.get_run(run2.run_id).data)
    assert "hunter2" not in blob


def test_failed_run_is_marked_failed(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    try:
        with study_run("maze", {}, uri=uri, lock=tmp_path / "none.lock") as run:
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert MlflowClient(uri).get_run(run.run_id).info.status == "FAILED"


def test_env_uri_overrides_params(tmp_path, monkeypatch):
    env_uri = f"sqlite:///{tmp_path / 'env.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", env_uri)
    with study_run("maze", {}, uri=f"sqlite:///{tmp_path / 'params.db'}", lock=tmp_path / "x") as run:
        pass
    assert run.uri == env_uri and os.path.exists(tmp_path / "env.db")
    assert not os.path.exists(tmp_path / "params.db")


def test_dvc_hashes_missing_lock(tmp_path):
    assert dvc_data_hashes("maze", tmp_path / "dvc.lock") == {}


def test_data_hashes_are_this_runs_inputs_from_the_producing_stage(tmp_path):
    """The md5 tags name the data the run reads: the producing stage's output as dvc.lock has it now (its first
    run, and after the data changed), not the md5 this stage's own entry recorded last time; a dvc.lock being
    rewritten beside the run is read again."""
    import threading

    spec = {"stages": {"maze": {"cmd": "x", "deps": ["data/mazes", "flows/maze.py", "tenfold/studies/maze"]}}}
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(spec))
    lock = tmp_path / "dvc.lock"
    built = {"cmd": "b", "outs": [{"path": "data/mazes", "md5": "new.dir"}]}
    lock.write_text(yaml.safe_dump({"schema": "2.0", "stages": {"build_mazes": built}}))
    assert dvc_data_hashes("maze", lock) == {"data/mazes": "new.dir"}  # first run: no entry of its own yet
    deps = [{"path": "data/mazes", "md5": "old.dir"}, {"path": "tenfold/studies/maze", "md5": "c.dir"}]
    previous = {"cmd": "x", "deps": deps}
    lock.write_text(yaml.safe_dump({"schema": "2.0", "stages": {"build_mazes": built, "maze": previous}}))
    assert dvc_data_hashes("maze", lock) == {"data/mazes": "new.dir", "tenfold/studies/maze": "c.dir"}
    text = lock.read_text()
    lock.write_text("")  # another stage's `dvc repro` is rewriting dvc.lock
    threading.Timer(0.3, lock.write_text, args=(text,)).start()
    assert dvc_data_hashes("maze", lock) == {"data/mazes": "new.dir", "tenfold/studies/maze": "c.dir"}
