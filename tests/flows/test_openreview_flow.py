"""Both OpenReview flows at tiny scale: offline tables -> analysis -> results, plots, MLflow run and model (its
yearly schedule goes through DVC: tests/flows/test_deploy.py)."""

import pytest


@pytest.mark.slow
def test_openreview_flows_tiny(prefect_harness, tiny, tmp_path, check_study_outputs):
    from mlflow.tracking import MlflowClient

    from flows.openreview import openreview_flow, scrape_openreview_flow

    params = tiny(["openreview"])
    manifest = scrape_openreview_flow(params_path=str(params), root=str(tmp_path))
    assert manifest["source"] == "offline" and set(manifest["years"]) == {"2017", "2020"}
    assert (tmp_path / "data" / "openreview" / "reviews.parquet").exists()
    assert (tmp_path / "data" / "openreview" / "_scrape" / "README").exists()
    out = openreview_flow(params_path=str(params), root=str(tmp_path))
    r = check_study_outputs(
        tmp_path,
        out,
        "openreview",
        {
            "decision_reproducibility_2017",
            "decision_reproducibility_2020",
            "agreement_trend",
            "institution_effect",
            "gender_gap",
        },
    )
    for c in r["claims"]:
        assert c["measured"] is not None
    assert 0.5 < r["per_year"]["2017"]["reproducibility"]["median"] < 0.95
    assert r["headline"]["reproducibility_2017"] == r["per_year"]["2017"]["reproducibility"]["median"]
    assert {"institutions", "gender", "citations"} <= set(r) and r["data_source"] == "offline"
    for f in r["figures"]:
        assert (tmp_path / f["path"]).stat().st_size > 1000
    assert (tmp_path / "models" / "openreview" / "acceptance.pt").exists()
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = {x.info.run_name: x for x in client.search_runs([client.get_experiment_by_name("openreview").experiment_id])}
    assert set(runs) == {"scrape_openreview", "openreview"}
    scrape = runs["scrape_openreview"]
    assert scrape.data.tags["dvc_stage"] == "scrape_openreview" and scrape.data.tags["data_source"] == "offline"
    assert scrape.data.metrics["rows_reviews"] > 0
    assert [m.step for m in client.get_metric_history(out["run"]["mlflow_run_id"], "alpha")] == [2017, 2020]
