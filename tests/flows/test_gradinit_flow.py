import pytest


@pytest.mark.slow
def test_gradinit_flow_tiny(prefect_harness, tiny, tmp_path, check_study_outputs):
    from flows.gradinit import gradinit_flow

    params = tiny(["gradinit"])
    out = gradinit_flow(params_path=str(params), root=str(tmp_path))
    r = check_study_outputs(tmp_path, out, "gradinit", {"gradinit_first_epoch", "postln_no_warmup"})
    assert set(r["scales"]) == {"vgg", "resnet"} and r["scales"]["vgg"]
    assert {row[1] for row in r["tables"]["images"]["rows"]} == {"kaiming", "gradinit"}
    assert set(r["postln"]) == {"default@0.01", "gradinit@0.01"}
    assert "state" not in r["postln_init"] and r["postln_init"]["scales"]
    assert (tmp_path / "models" / "gradinit" / "vgg_gradinit.pt").exists()
