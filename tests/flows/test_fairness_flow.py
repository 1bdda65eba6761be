"""The fairness flows end to end at tiny scale: the face build, the results contract, MLflow lineage, the registered
model, and a sweep that resumes from its finished runs."""

import json

import pytest


@pytest.mark.slow
def test_fairness_flow_tiny(prefect_harness, tiny, tmp_path, check_study_outputs, monkeypatch, capsys):
    import numpy as np
    from mlflow.tracking import MlflowClient

    import tasks.fairness
    from flows.fairness import build_utkface_flow, fairness_flow

    params = tiny(["fairness"], {"common": {"progress": True}})  # as on a terminal: a bar of the nets trained
    manifest = build_utkface_flow(params_path=str(params), root=str(tmp_path))
    assert manifest["n"] == 1500 and (tmp_path / "data" / "utkface64" / "faces.npz").exists()
    assert np.load(tmp_path / "data" / "utkface64" / "faces.npz")["x"].shape == (1500, 3, 64, 64)

    out = fairness_flow(params_path=str(params), root=str(tmp_path))
    assert "fairness: train " in capsys.readouterr().err
    r = check_study_outputs(tmp_path, out, "fairness", {"fairness_overfits"})
    (c,) = r["claims"]
    head = r["overfit_by_dataset"]["utk_age_gender/eo"]  # the face headline's summary
    assert c["target"] == 2.0 and c["holds"] == head["holds"] == (head["status"] == "holds")
    assert c["holds"] == (head["meets_constraint"] and head["ratio"] >= 2.0 and head["test_gap"] > head["test_floorq"])
    assert r["headline"]["fairness_overfits_ratio"] == head["ratio"]
    assert set(r["datasets"]) == {"utk_age_gender", "hearts"} and r["datasets"]["utk_age_gender"]["n_test"] == 300
    assert {"erm_reference", "overfit_by_dataset", "baselines", "curves", "helps"} <= set(r)
    assert {
        "faces",
        "by_method",
        "capacity",
        "training_length",
        "training_size",
        "what_helps",
        "overfit_by_dataset",
        "fairlearn",
    } <= set(r["tables"])
    assert [row[:2] for row in r["tables"]["capacity"]["rows"]] == [["cnn", 4], ["cnn", 8], ["resnet", 4]]
    assert [row[0] for row in r["tables"]["training_size"]["rows"]] == [60, 120]
    assert set(r["baselines"]) == {
        "utk_age_gender/eo",
        "utk_age_gender/dp",
        "utk_age_gender+ms1m/eo",  # the reduction on the MS1M MobileFaceNet's embeddings of the faces
        "utk_age_gender+ms1m/dp",
        "hearts/eo",
    }
    assert r["headline"]["fairlearn_embedding_test_gap"] == r["baselines"]["utk_age_gender+ms1m/eo"]["test_gap_eo"]
    assert (r["overfit_by_dataset"]["hearts/eo"]["status"] == "holds") == r["overfit_by_dataset"]["hearts/eo"]["holds"]
    for name in ("gap_vs_epoch", "gap_vs_width", "gap_vs_size"):
        assert (tmp_path / "plots" / "fairness" / f"{name}.csv").exists()
    assert (tmp_path / "models" / "fairness" / "constrained_net.pt").exists()

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = client.get_run(out["run"]["mlflow_run_id"])
    tags = run.data.tags
    assert tags["data_source.utk_age_gender"].startswith("UTKFace 64x64") and tags["main_dataset"] == "utk_age_gender"
    assert tags["data_source.hearts"].startswith("package:scikit-lego")
    assert run.data.params["fairness.face_train.epsilon"] == "0.05"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "test_gap")] == [1, 2]
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


@pytest.mark.slow
def test_fairness_flow_fails_before_training_on_a_missing_face_build(prefect_harness, tiny, tmp_path):
    from flows.fairness import fairness_flow
    from tenfold.core.errors import ArtifactError

    with pytest.raises(ArtifactError, match="utkface64/faces.npz: not found"):
        fairness_flow(params_path=str(tiny(["fairness"])), root=str(tmp_path))
    assert not (tmp_path / "checkpoints" / "fairness").exists()
