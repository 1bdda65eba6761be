"""The fairness flow end to end at tiny scale: metrics contract, MLflow lineage, registered model."""
import json

import pytest


@pytest.mark.slow
def test_fairness_flow_tiny(prefect_harness, tiny, tmp_path):
    from mlflow.tracking import MlflowClient

    from flows.fairness import fairness_flow

    params = tiny(["fairness"], {"fairness": {"train": {"notions": ["dp", "eo"]}}})
    m = fairness_flow(params_path=str(params), root=str(tmp_path))
    saved = json.loads((tmp_path / "metrics" / "fairness.json").read_text())
    assert saved["study"] == "fairness" and saved["arxiv"] == "2102.06764"
    (c,) = saved["claims"]
    assert c["id"] == "fairness_overfits" and c["target"] == 2.0
    head = saved["headline"]
    assert c["holds"] == (head["meets_constraint"] and head["ratio"] >= 2.0)
    assert set(saved["datasets"]) == {"hearts", "german"}
    assert {"main", "training_length", "capacity", "datasets", "overfit_by_dataset", "fairlearn"} <= set(
        saved["tables"])
    assert len(saved["tables"]["capacity"]["rows"]) == 2  # widths 8 and 16
    assert (tmp_path / "plots" / "fairness" / "gap_vs_epoch.png").exists()
    assert (tmp_path / "models" / "fairness" / "constrained_net.pt").exists()

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = client.get_run(m["run"]["mlflow_run_id"])
    tags = run.data.tags
    assert tags["study"] == "fairness" and tags["arxiv"] == "2102.06764" and tags["dvc_stage"] == "fairness"
    assert "git_commit" in tags and tags["data_source.hearts"].startswith("package:scikit-lego")
    assert run.data.params["fairness.train.epsilon"] == "0.05"
    versions = client.search_model_versions("name='tenfold-fairness'")
    assert len(versions) == 1 and versions[0].tags["passed_check"] == str(m["run"]["alias_moved"]).lower()

