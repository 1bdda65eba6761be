"""Flow test of study `minimax` at tiny scale, on a CIFAR-10 slice built by the real `build_cifar10` code."""

import pytest

from tests.support.cifar import built_cifar_slice


@pytest.mark.slow
def test_minimax_flow_tiny(prefect_harness, tiny, tmp_path, check_study_outputs, capsys):
    from mlflow.tracking import MlflowClient

    from flows.minimax import minimax_flow

    built_cifar_slice(tmp_path, 6, 3)
    params = tiny(["minimax"], {"common": {"progress": True}})  # as on a terminal: a bar per training run
    out = minimax_flow(params_path=str(params), root=str(tmp_path))
    assert "minimax: train weighted_at seed" in capsys.readouterr().err
    r = check_study_outputs(tmp_path, out, "minimax", {"weighted_beats_uniform"})
    res, (c,) = r["results"], r["claims"]
    gain = 100 * (res["weighted_at"]["robust"]["2.0"] - res["at"]["robust"]["2.0"])
    assert c["measured"] == pytest.approx(gain, abs=1e-4)
    drop = 100 * (res["at"]["robust"]["0.0"] - res["weighted_at"]["robust"]["0.0"])
    assert c["holds"] == (gain > 0 and drop <= 2.0)
    assert len(r["seeds"]) == 2 and len(r["per_seed"]) == 4
    assert r["data"]["name"] == "cifar10" and r["data"]["source"].startswith("imagefolder:")
    assert (r["data"]["n_train"], r["data"]["n_test"]) == (40, 20)
    assert (tmp_path / "plots" / "minimax" / "weights_weighted_at.png").exists()
    assert sorted(p.name for p in (tmp_path / "models" / "minimax").iterdir()) == ["at.pt", "weighted_at.pt"]
    assert len(list((tmp_path / "checkpoints" / "minimax").glob("*.pt"))) == 4
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run = MlflowClient(uri).get_run(r["run"]["mlflow_run_id"])
    assert "weighted_at.robust_alpha_2" in run.data.metrics and "weighted_gain_points" in run.data.metrics
    assert run.data.tags["data_source"].startswith("imagefolder:")

    # a second run resumes every trainer from its finished checkpoint: the same numbers
    again = minimax_flow(params_path=str(params), root=str(tmp_path))
    assert again["results"] == r["results"] and again["claims"] == r["claims"]
