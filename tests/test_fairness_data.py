"""Offline fairness datasets: shapes, binary labels and groups, split hygiene, clear errors."""
import numpy as np
import pytest

from tenfold.fairness.data import DataUnavailable, load, stratified_split


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
