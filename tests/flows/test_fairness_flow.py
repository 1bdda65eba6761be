"""The fairness flow end to end at tiny scale: results contract, MLflow lineage, registered model, and a sweep
that resumes from its finished runs."""

import json

import pytest


@pytest.mark.slow
def test_fairness_flow_tiny(prefect_harness, tiny, tmp_path, check_study_outputs, monkeypatch):
    from mlflow.tracking import MlflowClient

    import tasks.fairness
    from flows.fairness import fairness_flow

    params = tiny(["fairness"], {"fairness": {"train": {"notions": ["dp", "eo"]}}})
    out = fairness_flow(params_path=str(params), root=str(tmp_path))
    r = check_study_outputs(tmp_path, out, "fairness", {"fairness_overfits"})
    (c,) = r["claims"]
    head = r["overfit_by_dataset"]["hearts"]  # the main dataset's summary
    assert c["target"] == 2.0 and c["holds"] == (head["meets_constraint"] and head["ratio"] >= 2.0)
    assert r["headline"]["fairness_overfits_ratio"] == head["ratio"]
    assert set(r["datasets"]) == {"hearts", "german"} and {"erm_reference", "overfit_by_dataset", "baselines"} <= set(r)
    assert {"main", "training_length", "capacity", "datasets", "overfit_by_dataset", "fairlearn"} <= set(r["tables"])
    assert len(r["tables"]["capacity"]["rows"]) == 2  # widths 8 and 16
    assert (tmp_path / "plots" / "fairness" / "gap_vs_epoch.csv").exists()
    assert (tmp_path / "models" / "fairness" / "constrained_net.pt").exists()

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = client.get_run(out["run"]["mlflow_run_id"])
    tags = run.data.tags
    assert tags["data_source.hearts"].startswith("package:scikit-lego") and tags["main_dataset"] == "hearts"
    assert run.data.params["fairness.train.epsilon"] == "0.05"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "test_gap")] == [2, 4]
    versions = client.search_model_versions("name='tenfold-fairness'")
    assert versions[0].tags["passed_check"] == str(out["run"]["alias_moved"]).lower()

    # a sweep killed mid-way: the finished runs resume from their checkpoints, only the missing one trains
    ckpts = sorted((tmp_path / "checkpoints" / "fairness").glob("*.pt"))
    assert len(ckpts) == r["deep_net_runs"]
    ckpts[0].unlink()
    trained = []
    real = tasks.fairness.train_fair
    monkeypatch.setattr(tasks.fairness, "train_fair", lambda *a, **k: trained.append(a[0]) or real(*a, **k))
    again = fairness_flow(params_path=str(params), root=str(tmp_path))
    assert len(trained) == 1
    rerun = json.loads((tmp_path / "results" / "fairness.json").read_text())
    assert {k: v for k, v in rerun.items() if k != "run"} == {k: v for k, v in r.items() if k != "run"}
    assert again["claims"] == out["claims"]
