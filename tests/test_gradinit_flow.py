import json

import pytest
from mlflow.tracking import MlflowClient


@pytest.mark.slow
def test_gradinit_flow_tiny(prefect_harness, tiny, tmp_path):
    from flows.gradinit import gradinit_flow

    params = tiny(["gradinit"])
    out = gradinit_flow(params_path=str(params), root=str(tmp_path))
    m = json.loads((tmp_path / "metrics" / "gradinit.json").read_text())
    assert m["study"] == "gradinit" and m["arxiv"] == "2102.08098"
    assert {c["id"] for c in m["claims"]} == {"gradinit_first_epoch", "postln_no_warmup"}
    assert out["claims"] == m["claims"]
    for c in m["claims"]:
        assert set(c) >= {"id", "claim", "paper", "measured", "target", "holds"}
        assert isinstance(c["holds"], bool)
    assert m["figures"] and all((tmp_path / f["path"]).exists() for f in m["figures"])
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = client.get_run(m["run"]["mlflow_run_id"])
    for tag in ("study", "arxiv", "git_commit", "dvc_stage", "data_source"):
        assert run.data.tags.get(tag), tag
    assert run.data.tags["study"] == "gradinit" and run.data.tags["dvc_stage"] == "gradinit"
    assert run.info.status == "FINISHED"
    versions = client.search_model_versions("name='tenfold-gradinit'")
    assert len(versions) == 1 and versions[0].tags["passed_check"] in ("true", "false")
    assert set(m["scales"]) == {"vgg", "resnet"} and m["scales"]["vgg"]
    assert {row[1] for row in m["tables"]["images"]["rows"]} == {"kaiming", "gradinit"}
    assert set(m["postln"]) == {"default@0.01", "gradinit@0.01"}
