"""The `lowkey` flow at tiny scale: the outputs of the contract, plots, the ensemble for the web tool, the
trade-off sweep, MLflow run tags and the registered model."""

import pytest


@pytest.mark.slow
def test_lowkey_flow_tiny(prefect_harness, tiny, tmp_path, check_study_outputs):
    from mlflow.tracking import MlflowClient

    from flows.lowkey import lowkey_flow

    params = tiny(["lowkey"])
    out = lowkey_flow(params_path=str(params), root=str(tmp_path))
    claim_ids = {"dlib_rank1_filtered", "lowkey_ssim", "surrogate_rank1_filtered"}
    r = check_study_outputs(tmp_path, out, "lowkey", claim_ids)
    for c in r["claims"]:
        cmp = {"<=": c["measured"] <= c["target"], ">=": c["measured"] >= c["target"]}[c["comparison"]]
        assert c["holds"] == cmp
    # tiny: 3 identities, 2 probes each; dlib identifies clean AT&T probes almost perfectly
    assert r["identification"]["dlib"]["clean"]["ranks"]["1"] >= 2 / 3
    assert 0 < r["quality"]["ssim_mean"] < 1 and r["headline"]["lowkey_ssim"] == r["quality"]["ssim_mean"]
    assert (tmp_path / "plots" / "lowkey" / "examples.png").exists()
    assert (tmp_path / "models" / "lowkey" / "ensemble.pt").exists()
    assert (tmp_path / "checkpoints" / "lowkey" / "mobilenet_arcface.pt").exists()
    # the trade-off sweep: the default row plus the tiny profile's one point, on 1 probe per subject
    t = r["tradeoff"]
    assert t["probes"] == 3 and [row[0] for row in t["rows"]][0] == "default" and len(t["rows"]) == 2
    assert all(0 <= row[t["columns"].index("dlib_rank1")] <= 1 for row in t["rows"])
    assert len((tmp_path / "plots" / "lowkey" / "tradeoff.csv").read_text().strip().splitlines()) == 3
    run = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}").get_run(r["run"]["mlflow_run_id"])
    assert run.data.tags["detector"].startswith("MTCNN") and "mobilenet_arcface_train_loss" in run.data.metrics
