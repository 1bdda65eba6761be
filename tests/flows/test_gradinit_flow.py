"""Flow test of study `gradinit` at tiny scale, on a CIFAR-10 slice built by the real `build_cifar10` code (the CPU
default's data)."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


def _cifar_slice(root: Path, train_per_class: int = 10, test_per_class: int = 5) -> dict:
    """<root>/data/cifar10 as stage build_cifar10 writes it (the real `cifar10.build`), from a slice of the offline
    ImageFolder copy (the first images of each class; random images where the copy is absent)."""
    from tenfold.components.data import cifar10

    rng = np.random.default_rng(0)
    for split, n in (("train", train_per_class), ("test", test_per_class)):
        for c in cifar10.CLASSES:
            d = root / "slice" / "cifar10" / split / c
            d.mkdir(parents=True)
            real = sorted((SHARED / "cifar10" / split / c).glob("*.png"))[:n] if SHARED.exists() else []
            for i in range(n):
                if i < len(real):
                    shutil.copy(real[i], d / real[i].name)
                else:
                    Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(d / f"{i}.png")
    return cifar10.build(root / "data" / "cifar10", root / "data", root / "slice")


@pytest.mark.slow
def test_gradinit_flow_tiny(prefect_harness, tiny, tmp_path, check_study_outputs):
    from flows.gradinit import gradinit_flow

    man = _cifar_slice(tmp_path)
    params = tiny(["gradinit"])
    out = gradinit_flow(params_path=str(params), root=str(tmp_path))
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
