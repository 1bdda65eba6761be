"""Flow test of study `minimax` at tiny scale."""
import json

import pytest
from mlflow.tracking import MlflowClient


@pytest.mark.slow
def test_minimax_flow_tiny(prefect_harness, tiny, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    from flows.minimax import minimax_flow

    params = tiny(["minimax"])
    m = minimax_flow(params_path=str(params), root=str(tmp_path))
    saved = json.loads((tmp_path / "metrics" / "minimax.json").read_text())
    assert saved["study"] == "minimax" and [c["id"] for c in saved["claims"]] == ["weighted_beats_uniform"]
    res = saved["results"]
    c = saved["claims"][0]
    gain = 100 * (res["weighted_at"]["robust"]["2.0"] - res["at"]["robust"]["2.0"])
    assert c["measured"] == pytest.approx(gain, abs=1e-4)
    drop = 100 * (res["at"]["robust"]["0.0"] - res["weighted_at"]["robust"]["0.0"])
    assert c["holds"] == (gain > 0 and drop <= 2.0)
    assert (tmp_path / "plots" / "minimax" / "weights_weighted_at.png").exists()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    t = MlflowClient(uri).get_run(m["run"]["mlflow_run_id"]).data.tags
    assert t["study"] == "minimax" and t["arxiv"] == "2010.12989" and t["dvc_stage"] == "minimax" and t["git_commit"]
    assert MlflowClient(uri).get_registered_model("tenfold-minimax").name == "tenfold-minimax"
