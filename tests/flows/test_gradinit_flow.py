"""Flow test of study `gradinit` at tiny scale, on a CIFAR-10 slice built by the real `build_cifar10` code (the CPU
default's data)."""

import pytest

from tests.support.cifar import built_cifar_slice


@pytest.mark.slow
def test_gradinit_flow_tiny(prefect_harness, tiny, tmp_path, check_study_outputs, capsys):
    from flows.gradinit import gradinit_flow

    man = built_cifar_slice(tmp_path)
    params = tiny(["gradinit"], {"common": {"progress": True}})  # as on a terminal: a bar per training run
    out = gradinit_flow(params_path=str(params), root=str(tmp_path))
    assert "gradinit: train vgg/gradinit seed" in capsys.readouterr().err
    r = check_study_outputs(tmp_path, out, "gradinit", {"gradinit_first_epoch", "postln_no_warmup"})
    assert r["data"] == "cifar10" and r["data_source"] == man["source"] and (r["n_train"], r["n_test"]) == (100, 50)
    assert "on CIFAR-10" in r["tables"]["images"]["title"]
    # tiny: 2 points within the first epoch, the last one its end
    curve = r["first_epoch_curves"]["vgg"]
    assert len(curve["step"]) == 2 and curve["kaiming"][-1] == r["images"]["vgg/kaiming"]["first_epoch_acc"]
    assert (tmp_path / "plots" / "gradinit" / "vgg_first_epoch.csv").exists()
    assert len(r["vgg_first_epoch_gap_per_seed"]) == 1
    assert set(r["scales"]) == {"vgg", "resnet"} and r["scales"]["vgg"]
    assert {row[1] for row in r["tables"]["images"]["rows"]} == {"kaiming", "gradinit"}
    assert set(r["postln"]) == {"default@0.01", "gradinit@0.01"}
    assert "state" not in r["postln_init"] and r["postln_init"]["scales"]
    assert (tmp_path / "models" / "gradinit" / "vgg_gradinit.pt").exists()
