import pytest


@pytest.mark.slow
def test_depth_flow_tiny(prefect_harness, tiny, tmp_path, check_study_outputs):
    from flows.depth import depth_flow

    params = tiny(["depth"])
    out = depth_flow(params_path=str(params), root=str(tmp_path))
    r = check_study_outputs(tmp_path, out, "depth", {"depth_emulation"})
    rows = r["tables"]["depth"]["rows"]
    assert {row[0] for row in rows} == {"residual", "mlp"}
    assert all(row[4] < row[6] for row in rows)  # the recurrent net has fewer parameters at k >= 2
    assert 0.0 <= r["mean_agreement"] <= 1.0 and set(r["family_gap"]) == {"residual", "mlp"}
    assert (tmp_path / "models" / "depth" / "residual_recurrent_d11.pt").exists()
    ckpts = sorted(p.name for p in (tmp_path / "checkpoints" / "depth").iterdir())
    assert ckpts == ["mlp_d4_ff_s0.pt", "mlp_d4_rec_s0.pt", "residual_d11_ff_s0.pt", "residual_d11_rec_s0.pt"]
    # a rerun resumes every net from its checkpoint: same numbers
    again = depth_flow(params_path=str(params), root=str(tmp_path))
    assert again["tables"] == out["tables"] and again["claims"] == out["claims"]
