"""The `smoothing` flow end to end at tiny scale: metrics contract, MLflow run and registered model."""
import json

import pytest
import yaml


@pytest.mark.slow
def test_smoothing_flow_tiny(prefect_harness, tiny, tmp_path):
    from mlflow.tracking import MlflowClient

    from flows.smoothing import smoothing_flow

    params = tiny(["smoothing"])
    metrics = smoothing_flow(params_path=str(params), root=str(tmp_path))

    on_disk = json.loads((tmp_path / "metrics" / "smoothing.json").read_text())
    assert on_disk["study"] == "smoothing" and on_disk["arxiv"] == "2102.09701"
    (c,) = on_disk["claims"]
    assert c["id"] == "smoothing_certifies" and isinstance(c["holds"], bool)
    shares = on_disk["certified_at_default_sigma"]
    assert set(shares) == {"autoencoder", "reconstructor", "faces"}
    assert c["measured"] == pytest.approx(min(shares.values()))
    # holds is computed from the measurements: the share and the growth of eps_out
    growing = all(g is not None and g > 0 for g in on_disk["eps_out_growth"].values())
    assert c["holds"] == (c["measured"] >= c["target"] and growing)
    rows = on_disk["tables"]["certificates"]["rows"]
    assert {r[0] for r in rows} == {"autoencoder", "reconstructor", "faces"}
    for r in rows:  # rates are shares; a certified input has a non-negative eps_out
        assert 0.0 <= r[5] <= 1.0 and 0.0 <= r[6] <= 1.0
        assert (r[6] == 0) or r[7] >= 0
    assert on_disk["tables"]["bn_ablation"]["rows"]
    for f in on_disk["figures"]:
        assert (tmp_path / f["path"]).exists()
    assert (tmp_path / "plots" / "smoothing" / "curves").is_dir()
    assert (tmp_path / "models" / "smoothing" / "autoencoder.pt").exists()
    assert metrics["run"]["mlflow_run_id"] == on_disk["run"]["mlflow_run_id"]

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = client.get_run(on_disk["run"]["mlflow_run_id"])
    for tag in ("study", "arxiv", "git_commit", "dvc_stage", "data_source.images", "data_source.faces"):
        assert tag in run.data.tags
    assert run.data.tags["study"] == "smoothing" and run.data.tags["dvc_stage"] == "smoothing"
    n_pred = yaml.safe_load(params.read_text())["smoothing"]["smooth"]["n_pred"]
    assert run.data.params["smoothing.smooth.n_pred"] == str(n_pred)
    versions = client.search_model_versions("name='tenfold-smoothing'")
    assert len(versions) == 1 and versions[0].run_id == run.info.run_id
    alias_set = "champion" in client.get_registered_model("tenfold-smoothing").aliases
    assert alias_set == c["holds"]
