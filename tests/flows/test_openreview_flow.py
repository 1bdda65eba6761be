"""Both OpenReview flows at tiny scale: offline tables -> analysis -> metrics, plots, MLflow run and model."""
import json

import pytest


@pytest.mark.slow
def test_openreview_flows_tiny(prefect_harness, tiny, tmp_path):
    from mlflow.tracking import MlflowClient

    from flows.openreview import openreview_flow, scrape_openreview_flow

    params = tiny(["openreview"])
    manifest = scrape_openreview_flow(params_path=str(params), root=str(tmp_path))
    assert manifest["source"] == "offline" and set(manifest["years"]) == {"2017", "2020"}
    assert (tmp_path / "data" / "openreview" / "reviews.parquet").exists()
    m = openreview_flow(params_path=str(params), root=str(tmp_path))
    saved = json.loads((tmp_path / "metrics" / "openreview.json").read_text())
    ids = {c["id"] for c in saved["claims"]}
    assert {"decision_reproducibility_2017", "decision_reproducibility_2020", "agreement_trend",
            "institution_effect", "gender_gap"} <= ids
    for c in saved["claims"]:
        assert isinstance(c["holds"], bool) and c["measured"] is not None
    assert 0.5 < saved["per_year"]["2017"]["reproducibility"]["median"] < 0.95
    for f in saved["figures"]:
        assert (tmp_path / f["path"]).stat().st_size > 1000
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = client.get_run(m["run"]["mlflow_run_id"])
    for tag in ("study", "arxiv", "git_commit", "dvc_stage", "data_source"):
        assert tag in run.data.tags
    assert run.data.tags["dvc_stage"] == "openreview" and run.data.tags["data_source"] == "offline"
    assert client.get_registered_model("tenfold-openreview").name == "tenfold-openreview"
