import pytest

from conftest import check_study_outputs


@pytest.mark.slow
def test_depth_flow_tiny(prefect_harness, tiny, tmp_path):
    from flows.depth import depth_flow

    params = tiny(["depth"])
    out = depth_flow(params_path=str(params), root=str(tmp_path))
    m = check_study_outputs(tmp_path, out, "depth", "2102.11011", {"depth_emulation"})
    rows = m["tables"]["depth"]["rows"]
    assert {r[0] for r in rows} == {"residual", "mlp"}
    assert all(r[4] < r[6] for r in rows)  # the recurrent net has fewer parameters at k >= 2
    assert 0.0 <= m["mean_agreement"] <= 1.0
