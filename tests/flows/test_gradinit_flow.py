import pytest

from conftest import check_study_outputs


@pytest.mark.slow
def test_gradinit_flow_tiny(prefect_harness, tiny, tmp_path):
    from flows.gradinit import gradinit_flow

    params = tiny(["gradinit"])
    out = gradinit_flow(params_path=str(params), root=str(tmp_path))
    m = check_study_outputs(tmp_path, out, "gradinit", "2102.08098", {"gradinit_first_epoch", "postln_no_warmup"})
    assert set(m["scales"]) == {"vgg", "resnet"} and m["scales"]["vgg"]
    assert {row[1] for row in m["tables"]["images"]["rows"]} == {"kaiming", "gradinit"}
    assert set(m["postln"]) == {"default@0.01", "gradinit@0.01"}
