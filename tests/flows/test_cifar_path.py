"""The CIFAR-10 paths without the full data: the image loader's torchvision layout (a tiny folder of pickled
batches under cifar-10-batches-py, built here; nothing downloads), and the depth and gradinit studies reading the
arrays of stage `build_cifar10` (built here from those batches or from a slice of the offline ImageFolder copy).

torchvision checks the md5 of every batch file; fake files cannot match, so that one check is replaced by
"the file exists". Everything else (unpickling, the channel layout, labels, our conversion) runs for real."""

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torchvision

from tenfold.components.data import cifar10
from tenfold.components.data.images import DataUnavailable, load
from tenfold.core.errors import ArtifactError
from tests.support.cifar import built_cifar_slice

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"

TRAIN_PER_BATCH, N_TEST = 24, 30


def _fake_cifar(root: Path, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    folder = root / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    made = {}

    def batch(name, n):
        labels = (np.arange(n) % 10).tolist()
        # bright red images for even labels, dark blue for odd ones: a property that survives the conversion
        img = np.zeros((n, 3, 32, 32), np.uint8)
        for i, lab in enumerate(labels):
            img[i, 0 if lab % 2 == 0 else 2] = 200 + rng.integers(0, 50)
        with open(folder / name, "wb") as f:
            pickle.dump({"data": img.reshape(n, -1), "labels": labels}, f)
        made[name] = (img, labels)

    for k in range(1, 6):
        batch(f"data_batch_{k}", TRAIN_PER_BATCH)
    batch("test_batch", N_TEST)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"class{i}" for i in range(10)]}, f)
    return made


@pytest.fixture
def fake_cifar(tmp_path, monkeypatch):
    made = _fake_cifar(tmp_path / "data")
    monkeypatch.setattr(
        torchvision.datasets.CIFAR10,
        "_check_integrity",
        lambda self: all(
            (Path(self.root) / self.base_folder / n).exists() for n, _ in self.train_list + self.test_list
        ),
    )
    # torchvision reads the class names from batches.meta (checked there too); here: torchvision's real names
    monkeypatch.setattr(
        torchvision.datasets.CIFAR10, "_load_meta", lambda self: setattr(self, "classes", list(cifar10.CLASSES))
    )
    return tmp_path, made


@pytest.fixture
def cifar_slice(tmp_path):
    """`tmp_path` with CIFAR-10 arrays built from a slice (10 train / 5 test images per class) under data/cifar10."""
    built_cifar_slice(tmp_path)
    return tmp_path


def test_loader_reads_the_torchvision_cifar10_layout(fake_cifar):
    tmp_path, made = fake_cifar
    d = load("cifar10", tmp_path / "data")
    assert d.source.startswith("torchvision:") and d.num_classes == 10
    assert d.x_train.shape == (5 * TRAIN_PER_BATCH, 3, 32, 32) and d.x_test.shape == (N_TEST, 3, 32, 32)
    assert d.x_train.dtype == np.float32 and 0.0 <= d.x_train.min() and d.x_train.max() <= 1.0
    img, labels = made["test_batch"]
    assert d.y_test.tolist() == labels
    np.testing.assert_allclose(d.x_test, img.astype(np.float32) / 255.0)  # channels first, same pixels
    even = d.y_train % 2 == 0
    assert (d.x_train[even, 0].mean() > 0.7) and (d.x_train[~even, 2].mean() > 0.7)


def test_missing_cifar_is_a_clear_error_not_a_download(tmp_path):
    with pytest.raises(DataUnavailable, match="cifar10 not found under"):
        load("cifar10", tmp_path / "nothing-here")
    assert not (tmp_path / "nothing-here").exists() or not any((tmp_path / "nothing-here").rglob("*.tar.gz"))


def test_depth_and_gradinit_read_the_built_arrays_and_name_the_stage_when_missing(tmp_path):
    from tasks.depth import load_images as depth_images
    from tasks.gradinit import load_images as gradinit_images
    from tenfold.studies.depth.params import DepthData
    from tenfold.studies.gradinit.params import ImageData

    for task, cfg in ((depth_images, DepthData()), (gradinit_images, ImageData())):
        assert cfg.dataset == "cifar10"  # the CPU default
        with pytest.raises(ArtifactError, match="build_cifar10"):
            task.fn(cfg, str(tmp_path / "data"), 0, 0)  # fails before anything else (no run context needed)


@pytest.mark.slow
def test_depth_flow_runs_on_the_built_cifar10_arrays(prefect_harness, tiny, fake_cifar):
    """torchvision's layout -> stage build_cifar10's arrays -> the depth flow; the source travels into the results.
    (The fake images have a constant green channel, so they are not standardised.)"""
    from flows.depth import depth_flow

    tmp_path, _ = fake_cifar
    man = cifar10.build(tmp_path / "data" / "cifar10", tmp_path / "data", tmp_path / "no-shared-copy")
    assert man["source"].startswith("torchvision:")
    params = tiny(
        ["depth"], {"depth": {"data": {"dataset": "cifar10", "n_train": 100, "n_test": 30, "standardize": False}}}
    )
    depth_flow(params_path=str(params), root=str(tmp_path))
    r = json.loads((tmp_path / "results" / "depth.json").read_text())
    assert r["claims"][0]["id"] == "depth_emulation" and r["data_source"] == man["source"] and r["data"] == "cifar10"
    assert "depth_emulation" in json.loads((tmp_path / "metrics" / "depth.json").read_text())["claims"]
    assert any(n.startswith("Data: every accuracy, gap and agreement here is on CIFAR-10") for n in r["notes"])
    rows = r["tables"]["depth"]["rows"]
    assert {r[0] for r in rows} == {"residual", "mlp"} and "cifar10" in r["tables"]["depth"]["title"]
    # 3x32x32 inputs: the MLP's first layer alone has 3072 * width weights
    mlp = next(r for r in rows if r[0] == "mlp")
    assert mlp[4] > 3 * 32 * 32 * 16


@pytest.mark.slow
def test_gradinit_flow_runs_on_the_built_cifar10_arrays(prefect_harness, tiny, cifar_slice):
    from flows.gradinit import gradinit_flow

    params = tiny(["gradinit"], {"gradinit": {"transformer": {"enabled": False}}})
    out = gradinit_flow(params_path=str(params), root=str(cifar_slice))
    assert out["data"] == "cifar10" and out["data_source"].startswith("imagefolder:")
    assert "on CIFAR-10" in out["tables"]["images"]["title"]
    assert any(n.startswith("Data: the image numbers (VGG, ResNet) are on CIFAR-10") for n in out["notes"])
