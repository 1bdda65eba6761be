import json

import pytest
from mlflow.tracking import MlflowClient


@pytest.mark.slow
def test_depth_flow_tiny(prefect_harness, tiny, tmp_path):
    from flows.depth import depth_flow

    params = tiny(["depth"])
    out = depth_flow(params_path=str(params), root=str(tmp_path))
    m = json.loads((tmp_path / "metrics" / "depth.json").read_text())
    assert m["study"] == "depth" and m["arxiv"] == "2102.11011"
    assert {c["id"] for c in m["claims"]} == {"depth_emulation"}
    assert out["claims"] == m["claims"]
    for c in m["claims"]:
        assert set(c) >= {"id", "claim", "paper", "measured", "target", "holds"}
        assert isinstance(c["holds"], bool)
    assert m["figures"] and all((tmp_path / f["path"]).exists() for f in m["figures"])
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = client.get_run(m["run"]["mlflow_run_id"])
    for tag in ("study", "arxiv", "git_commit", "dvc_stage", "data_source"):
        assert run.data.tags.get(tag), tag
    assert run.data.tags["study"] == "depth" and run.data.tags["dvc_stage"] == "depth"
    assert run.info.status == "FINISHED"
    versions = client.search_model_versions("name='tenfold-depth'")
    assert len(versions) == 1 and versions[0].tags["passed_check"] in ("true", "false")
    rows = m["tables"]["depth"]["rows"]
    assert {r[0] for r in rows} == {"residual", "mlp"}
    assert all(r[4] < r[6] for r in rows)  # the recurrent net has fewer parameters at k >= 2
    assert 0.0 <= m["mean_agreement"] <= 1.0
