"""The `smoothing` flow end to end at tiny scale: results/metrics contract, MLflow run and registered model."""

from pathlib import Path

import pytest
import yaml


@pytest.mark.slow
def test_smoothing_flow_tiny(prefect_harness, tiny, tmp_path, monkeypatch, check_study_outputs, capsys):
    from mlflow.tracking import MlflowClient

    from flows.smoothing import smoothing_flow

    # as on a terminal: a bar per training run; the shared data found through $TENFOLD_SHARED_DATA (as in a
    # clone elsewhere), not through common.shared_data
    shared = tmp_path.parent / "nowhere"
    params = tiny(["smoothing"], {"common": {"progress": True, "shared_data": str(shared)}})
    monkeypatch.setenv("TENFOLD_SHARED_DATA", str(Path(__file__).resolve().parents[3] / "shared" / "data"))
    out = smoothing_flow(params_path=str(params), root=str(tmp_path))
    assert "smoothing: train autoencoder sigma" in capsys.readouterr().err
    r = check_study_outputs(tmp_path, out, "smoothing", {"smoothing_certifies"})
    (c,) = r["claims"]
    shares = r["certified_at_default_sigma"]
    assert set(shares) == {"autoencoder", "reconstructor", "faces"}
    assert c["measured"] == pytest.approx(min(shares.values()))
    # holds is computed from the measurements: the share and the growth of eps_out
    growing = all(g is not None and g > 0 for g in r["eps_out_growth"].values())
    assert c["holds"] == (c["measured"] >= c["target"] and growing)
    rows = r["tables"]["certificates"]["rows"]
    assert {row[0] for row in rows} == {"autoencoder", "reconstructor", "faces"}
    for row in rows:  # rates are shares; a certified input has a non-negative eps_out
        assert 0.0 <= row[5] <= 1.0 and 0.0 <= row[6] <= 1.0
        assert (row[6] == 0) or row[7] >= 0
    assert r["tables"]["bn_ablation"]["rows"] and set(r["bn_ablation"]) == {"eval", "train"}
    assert (tmp_path / "plots" / "smoothing" / "curves").is_dir()
    assert (tmp_path / "models" / "smoothing" / "autoencoder.pt").exists()

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = client.get_run(r["run"]["mlflow_run_id"])
    assert {"data_source.images", "data_source.faces"} <= set(run.data.tags)
    n_pred = yaml.safe_load(params.read_text())["smoothing"]["smooth"]["n_pred"]
    assert run.data.params["smoothing.smooth.n_pred"] == str(n_pred)
    assert "autoencoder_l2_sigma0.25_abstain_rate" in run.data.metrics
    assert ("champion" in client.get_registered_model("tenfold-smoothing").aliases) == c["holds"]
