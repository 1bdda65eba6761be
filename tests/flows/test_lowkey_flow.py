"""The `lowkey` flow at tiny scale: metrics contract, plots, MLflow run tags and the registered model."""
import json

import pytest


@pytest.mark.slow
def test_lowkey_flow_tiny(prefect_harness, tiny, tmp_path):
    from mlflow.tracking import MlflowClient

    from flows.lowkey import lowkey_flow

    params = tiny(["lowkey"])
    m = lowkey_flow(params_path=str(params), root=str(tmp_path))
    on_disk = json.loads((tmp_path / "metrics" / "lowkey.json").read_text())
    assert on_disk["claims"] == m["claims"]
    ids = {c["id"]: c for c in m["claims"]}
    assert set(ids) == {"dlib_rank1_filtered", "lowkey_ssim", "surrogate_rank1_filtered"}
    for c in ids.values():
        cmp = {"<=": c["measured"] <= c["target"], ">=": c["measured"] >= c["target"]}[c["comparison"]]
        assert c["holds"] == cmp
    # tiny: 3 identities, 2 probes each; dlib identifies clean AT&T probes almost perfectly
    assert m["identification"]["dlib"]["clean"]["ranks"]["1"] >= 2 / 3
    assert 0 < m["quality"]["ssim_mean"] < 1
    assert (tmp_path / "plots" / "lowkey" / "rank1.png").exists()
    assert (tmp_path / "plots" / "lowkey" / "examples.png").exists()
    assert (tmp_path / "models" / "lowkey" / "ensemble.pt").exists()
    # the trade-off sweep: the default row plus the tiny profile's one point, on 1 probe per subject
    t = m["tradeoff"]
    assert t["probes"] == 3 and [r[0] for r in t["rows"]][0] == "default" and len(t["rows"]) == 2
    assert all(0 <= r[t["columns"].index("dlib_rank1")] <= 1 for r in t["rows"])
    assert (tmp_path / "plots" / "lowkey" / "tradeoff.png").exists()
    assert len((tmp_path / "plots" / "lowkey" / "tradeoff.csv").read_text().strip().splitlines()) == 3
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = client.get_run(m["run"]["mlflow_run_id"])
    for tag in ("study", "arxiv", "git_commit", "dvc_stage", "data_source"):
        assert tag in run.data.tags
    assert run.data.tags["arxiv"] == "2101.07922"
    assert client.get_registered_model("tenfold-lowkey").name == "tenfold-lowkey"
