"""The data-source table and the CIFAR-10 build: clear errors for missing or corrupt data, one source at a time.
CIFAR-10 is tested on small folders in torchvision's ImageFolder layout (a slice of the real offline copy when it
is there); no test reads all 35,000 files."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tenfold.components.data import cifar10, sources
from tenfold.core.errors import ArtifactError
from tests.support.cifar import cifar_folder

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


def _folder(root: Path, per_class: int = 2) -> Path:
    """A CIFAR-10 ImageFolder slice under `root` (real images from the shared copy when present); returns `root`."""
    return cifar_folder(root, per_class, per_class).parent


def test_portable_paths_name_no_machine_directory_when_the_data_lies_beside_the_project(tmp_path, monkeypatch):
    project, shared = tmp_path / "checkout", tmp_path / "shared" / "data" / "cifar10"
    project.mkdir()
    shared.mkdir(parents=True)
    monkeypatch.chdir(project)
    assert sources.portable(shared) == "../shared/data/cifar10"
    assert sources.portable(project / "data" / "x") == "data/x"
    deep = project / "a" / "b" / "c"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)  # four levels away: an absolute path says more than ../../../../
    assert sources.portable(shared) == str(shared.resolve())


def test_build_reads_the_folder_in_torchvisions_class_order_and_loads_back(tmp_path):
    shared = _folder(tmp_path / "shared")
    man = cifar10.build(tmp_path / "out", tmp_path / "data", shared)
    # provenance without this machine's absolute path: relative to the working directory, the reason for the fallback
    folder, tv = sources.portable(shared / "cifar10"), sources.portable(tmp_path / "data" / "cifar10")
    assert man["source"] == f"imagefolder:{folder} (torchvision CIFAR10 under {tv}: not found)"
    assert man["n_train"] == man["n_test"] == 20 and man["train_per_class"] == [2] * 10
    d = cifar10.load(tmp_path / "out")
    assert (
        d.x_train.shape == (20, 3, 32, 32)
        and d.x_train.dtype == np.float32
        and 0 <= d.x_train.min() <= d.x_train.max() <= 1
    )
    assert d.y_train.tolist() == sorted(d.y_train.tolist()) and set(d.y_train.tolist()) == set(range(10))
    first = sorted((shared / "cifar10" / "train" / "airplane").glob("*.png"))[0]
    np.testing.assert_array_equal(
        (d.x_train[0] * 255).round().astype(np.uint8), np.asarray(Image.open(first)).transpose(2, 0, 1)
    )
    # rebuilding the same data gives the same bytes (DVC sees an unchanged output)
    cifar10.build(tmp_path / "out2", tmp_path / "data", shared)
    assert (tmp_path / "out" / "cifar10.npz").read_bytes() == (tmp_path / "out2" / "cifar10.npz").read_bytes()


def test_the_threaded_read_keeps_the_sample_order_and_names_the_first_broken_file(tmp_path, monkeypatch):
    shared = _folder(tmp_path / "shared", 3) / "cifar10"
    files = sorted((shared / "test").glob("*/*.png"))  # ImageFolder's order: class folders, then file names
    expect = np.stack([np.asarray(Image.open(f)).transpose(2, 0, 1) for f in files])
    for n in (1, 8):
        monkeypatch.setattr(cifar10, "READ_THREADS", n)
        x, y = cifar10._read_split(shared / "test")
        np.testing.assert_array_equal(x, expect)
        assert y.tolist() == [c for c in range(10) for _ in range(3)]
    for cls in ("truck", "airplane"):  # two broken files: the error is the first in sample order, at any thread count
        Image.new("RGB", (30, 30)).save(shared / "test" / cls / "zz.png")
    with pytest.raises(sources.DataCorrupt, match=r"airplane/zz\.png: a 30x30 RGB"):
        cifar10._read_split(shared / "test")


def test_torchvision_path_is_taken_first_and_sources_are_never_mixed(tmp_path, monkeypatch):
    shared = _folder(tmp_path / "shared")
    fake = (
        np.zeros((4, 3, 32, 32), np.uint8),
        np.arange(4),
        np.ones((2, 3, 32, 32), np.uint8),
        np.arange(2),
        "torchvision:fake",
    )
    monkeypatch.setattr(cifar10, "_from_torchvision", lambda root, dl: fake)
    man = cifar10.build(tmp_path / "out", tmp_path / "data", shared)
    assert man["source"] == "torchvision:fake" and man["n_train"] == 4 and man["n_test"] == 2


@pytest.mark.parametrize(
    "damage, match",
    [
        (lambda r: shutil.rmtree(r / "cifar10" / "train" / "cat"), r"cifar10: missing train/cat"),
        (
            lambda r: Image.new("RGB", (28, 28)).save(r / "cifar10" / "test" / "dog" / "small.png"),
            r"small\.png: a 28x28 RGB",
        ),
        (
            lambda r: (r / "cifar10" / "train" / "frog" / "cut.png").write_bytes(
                (next((r / "cifar10" / "train" / "ship").glob("*.png"))).read_bytes()[:60]
            ),
            r"cut\.png: unreadable or truncated",
        ),
    ],
)
def test_a_broken_folder_fails_before_training_naming_the_file(tmp_path, damage, match):
    shared = _folder(tmp_path / "shared")
    damage(shared)
    with pytest.raises(sources.DataCorrupt, match=match):
        cifar10.build(tmp_path / "out", tmp_path / "data", shared)
    assert not (tmp_path / "out" / "cifar10.npz").exists()


def test_missing_and_corrupt_built_arrays_name_the_stage(tmp_path):
    with pytest.raises(ArtifactError, match="dvc repro build_cifar10"):
        cifar10.load(tmp_path / "none")
    cifar10.build(tmp_path / "out", tmp_path / "data", _folder(tmp_path / "shared", 1))
    p = tmp_path / "out" / "cifar10.npz"
    p.write_bytes(p.read_bytes()[:1000])
    with pytest.raises(ArtifactError, match=r"cifar10\.npz: corrupt or truncated.*dvc repro build_cifar10"):
        cifar10.load(tmp_path / "out")


def test_missing_source_says_what_and_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.delenv(sources.ENV_VAR, raising=False)
    with pytest.raises(sources.DataMissing, match=r"`utkface64` .* not found at .*utkface64; to get it: put it at"):
        sources.locate("utkface64", tmp_path)
    with pytest.raises(sources.DataMissing, match="openreview.source: live"):
        sources.locate("openreview_dumps", tmp_path)
    assert sources.check("att_faces", tmp_path)[0] == "missing"


def test_checksum_and_env_override(tmp_path, monkeypatch):
    f = tmp_path / "models" / "mobilefacenet" / "ms1m_foamliu.pt"
    f.parent.mkdir(parents=True)
    f.write_bytes(b"not the weights")
    assert sources.check("mobilefacenet_ms1m", tmp_path)[0] == "corrupt"
    with pytest.raises(sources.DataCorrupt, match="SHA-256 differs"):
        sources.locate("mobilefacenet_ms1m", tmp_path)
    monkeypatch.setenv(sources.ENV_VAR, str(tmp_path))
    assert sources.shared_root("../shared/data", "/somewhere") == tmp_path.resolve()
    monkeypatch.delenv(sources.ENV_VAR)
    assert sources.shared_root("../shared/data", "/somewhere/proj") == Path("/somewhere/shared/data")


@pytest.mark.skipif(not SHARED.exists(), reason="needs ../shared/data (present for developers and CI)")
def test_every_source_of_the_table_is_present_in_the_shared_data():
    states = {name: sources.check(name, SHARED, thorough=False) for name in sources.SOURCES}
    assert all(s == "present" for s, _ in states.values()), states
