"""Flow test of study `depth` at tiny scale, on a CIFAR-10 slice built by the real `build_cifar10` code (the CPU
default's data)."""

import pytest

from tests.support.cifar import built_cifar_slice


@pytest.mark.slow
def test_depth_flow_tiny(prefect_harness, tiny, tmp_path, check_study_outputs, capsys):
    from flows.depth import depth_flow

    man = built_cifar_slice(tmp_path)
    params = tiny(["depth"], {"common": {"progress": True}})  # as on a terminal: a bar per training run
    out = depth_flow(params_path=str(params), root=str(tmp_path))
    assert "depth: train residual recurrent depth" in capsys.readouterr().err
    r = check_study_outputs(tmp_path, out, "depth", {"depth_emulation"})
    assert r["data"] == "cifar10" and r["data_source"] == man["source"] and (r["n_train"], r["n_test"]) == (96, 48)
    assert any(n.startswith("Data: every accuracy, gap and agreement here is on CIFAR-10") for n in r["notes"])
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
