"""Offline fairness datasets: shapes, binary labels and groups, split hygiene, clear errors."""

import numpy as np
import pytest

from tenfold.studies.fairness.data import DataUnavailable, load, stratified_split


@pytest.mark.parametrize("name,n_total", [("hearts", 303), ("german", 1000), ("compas", 5278)])
def test_tabular_sets_load_whole_and_binary(name, n_total):
    d = load(name, seed=0, test_fraction=0.3)
    assert len(d.y_train) + len(d.y_test) == n_total
    for a in (d.y_train, d.s_train, d.y_test, d.s_test):
        assert set(np.unique(a)) == {0, 1}
    assert d.x_train.dtype == np.float32 and d.x_train.ndim == 2
    assert np.allclose(d.x_train.mean(0), 0, atol=1e-4)  # standardised with training statistics
    assert d.source.startswith("package:")


def test_hearts_group_is_sex_and_not_a_feature():
    from sklego.datasets import load_hearts

    raw = load_hearts(as_frame=True)
    d = load("hearts", seed=0)
    assert d.s_train.sum() + d.s_test.sum() == (raw.sex == 0).sum()  # s = 1 marks the female patients
    # 12 non-sex features, 4 of them one-hot encoded: the sensitive attribute is not among the inputs
    assert d.x_train.shape[1] == 8 + sum(raw[c].nunique() for c in ["cp", "restecg", "slope", "thal"])


def test_adult_is_capped_and_keeps_cell_proportions():
    d = load("adult", seed=0, max_train=1000, max_test=500)
    assert abs(len(d.y_train) - 1000) <= 4 and abs(len(d.y_test) - 500) <= 4
    assert 0.25 < d.s_train.mean() < 0.40  # about a third of Adult is female


def test_digits_group_is_stroke_weight():
    d = load("digits", seed=0, digits_source="digits", test_fraction=0.25)
    assert d.x_train.ndim == 4
    ink = d.x_train.reshape(len(d.x_train), -1).sum(1)
    assert ink[d.s_train == 1].min() >= ink[d.s_train == 0].max()


def test_split_is_disjoint_seeded_and_stratified():
    rng = np.random.default_rng(1)
    y, s = rng.integers(0, 2, 500), rng.integers(0, 2, 500)
    tr, te = stratified_split(y, s, 0.3, seed=3)
    assert not set(tr) & set(te) and len(tr) + len(te) == 500
    tr2, te2 = stratified_split(y, s, 0.3, seed=3)
    assert (tr == tr2).all() and (te == te2).all()
    for cell in [(0, 0), (0, 1), (1, 0), (1, 1)]:
        n = ((y == cell[0]) & (s == cell[1])).sum()
        assert abs(((y[te] == cell[0]) & (s[te] == cell[1])).sum() - 0.3 * n) <= 1


def test_missing_and_unknown_datasets_fail_clearly(tmp_path):
    with pytest.raises(DataUnavailable, match="celeba"):
        load("celeba", data_root=tmp_path)
    with pytest.raises(ValueError, match="unknown dataset 'mnist'"):
        load("mnist")


ATTRS = ["5_o_Clock_Shadow", "Male", "Smiling", "Young"]


def _fake_celeba(root, n=12):
    """A tiny CelebA folder in torchvision's layout: <root>/celeba/img_align_celeba/*.jpg and the five list files.
    Image i is a flat grey of level 20 * i, so a loaded image tells which file it came from; Smiling = i odd,
    Male = i % 3 == 0; partition: i < 8 train, 8-9 valid, 10-11 test."""
    from PIL import Image

    base = root / "celeba"
    (base / "img_align_celeba").mkdir(parents=True)
    names = [f"{i + 1:06d}.jpg" for i in range(n)]
    for i, name in enumerate(names):
        Image.new("RGB", (178, 218), (20 * i,) * 3).save(base / "img_align_celeba" / name, quality=95)

    def pm(v):
        return "1" if v else "-1"

    attr = {
        "5_o_Clock_Shadow": lambda i: i == 4,
        "Male": lambda i: i % 3 == 0,
        "Smiling": lambda i: i % 2 == 1,
        "Young": lambda i: True,
    }
    (base / "list_attr_celeba.txt").write_text(
        f"{n}\n{' '.join(ATTRS)}\n"
        + "".join(f"{nm} {' '.join(pm(attr[a](i)) for a in ATTRS)}\n" for i, nm in enumerate(names))
    )
    (base / "list_eval_partition.txt").write_text(
        "".join(f"{nm} {0 if i < 8 else 1 if i < 10 else 2}\n" for i, nm in enumerate(names))
    )
    (base / "identity_CelebA.txt").write_text("".join(f"{nm} {i + 1}\n" for i, nm in enumerate(names)))
    (base / "list_bbox_celeba.txt").write_text(
        f"{n}\nimage_id x_1 y_1 width height\n" + "".join(f"{nm} 10 10 100 120\n" for nm in names)
    )
    (base / "list_landmarks_align_celeba.txt").write_text(
        f"{n}\nlefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x "
        "rightmouth_y\n" + "".join(f"{nm} 69 109 106 113 77 142 73 152 108 154\n" for nm in names)
    )


def test_celeba_loader_reads_a_fake_folder_without_network(tmp_path, monkeypatch):
    """The paper-profile CelebA path: torchvision.datasets.CelebA(download=False) on a tiny fake folder. Only the
    md5 check of the list files is relaxed to 'the file exists' (fake files cannot match the real checksums)."""
    import os

    import torchvision.datasets.celeba as tv_celeba

    def no_network(*a, **k):
        raise AssertionError("the CelebA loader tried to download")

    monkeypatch.setattr(tv_celeba, "download_file_from_google_drive", no_network)
    monkeypatch.setattr(tv_celeba, "check_integrity", lambda fpath, md5=None: os.path.isfile(fpath))
    _fake_celeba(tmp_path)
    d = load(
        "celeba",
        data_root=tmp_path,
        seed=3,
        max_train=None,
        max_test=None,
        celeba={"target": "Smiling", "group": "Male", "size": 16},
    )
    assert d.name == "celeba" and d.target == "Smiling" and d.group == "Male"
    assert d.x_train.shape == (8, 3, 16, 16) and d.x_test.shape == (2, 3, 16, 16)
    for x, y, s, allowed in ((d.x_train, d.y_train, d.s_train, range(8)), (d.x_test, d.y_test, d.s_test, (10, 11))):
        idx = np.rint(x.mean((1, 2, 3)) * 255 / 20).astype(int)  # which file each image came from
        assert np.allclose(x, x.mean((1, 2, 3), keepdims=True), atol=2 / 255)  # flat grey survived JPEG + resize
        assert sorted(idx) == sorted(allowed)  # the split's images, each once
        assert list(y) == [int(i % 2 == 1) for i in idx]  # target attribute, in {0, 1}
        assert list(s) == [int(i % 3 == 0) for i in idx]  # sensitive attribute
    capped = load("celeba", data_root=tmp_path, seed=3, max_train=5, max_test=1, celeba={"size": 16})
    assert len(capped.y_train) == 5 and len(capped.y_test) == 1
    with pytest.raises(ValueError, match="Not_An_Attribute"):
        load("celeba", data_root=tmp_path, celeba={"target": "Not_An_Attribute", "size": 16})
