"""The project's fairness gaps agree with fairlearn's metrics and behave as gaps should."""

import numpy as np
import pytest
import torch
from fairlearn.metrics import demographic_parity_difference, equal_opportunity_difference, equalized_odds_difference
from hypothesis import given, settings
from hypothesis import strategies as st

from tenfold.studies.fairness.metrics import gap, permutation_floor, report

FAIRLEARN = {
    "dp": lambda y, p, s: demographic_parity_difference(y, p, sensitive_features=s),
    "eo": lambda y, p, s: equalized_odds_difference(y, p, sensitive_features=s),
    "eopp": lambda y, p, s: equal_opportunity_difference(y, p, sensitive_features=s),
}


def _sample(seed, n):
    rng = np.random.default_rng(seed)
    y, s, p = (rng.integers(0, 2, n) for _ in range(3))
    # every (y, s) cell present, so fairlearn's rates are defined
    y[:4], s[:4] = [0, 0, 1, 1], [0, 1, 0, 1]
    return y, s, p


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(8, 300))
def test_gaps_match_fairlearn(seed, n):
    y, s, p = _sample(seed, n)
    ours = report(p, y, s)
    for notion, ref in FAIRLEARN.items():
        assert ours[f"gap_{notion}"] == pytest.approx(ref(y, p, s), abs=1e-12)
    assert ours["acc"] == pytest.approx((p == y).mean())


def test_perfect_predictions_have_zero_odds_gaps_but_not_parity_gap():
    y = np.array([1, 1, 0, 0, 1, 0, 0, 0])
    s = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    r = report(y, y, s)
    assert r["acc"] == 1.0 and r["gap_eo"] == 0.0 and r["gap_eopp"] == 0.0
    assert r["gap_dp"] == pytest.approx(0.5 - 0.25)


def test_relaxed_gap_is_differentiable_and_empty_cells_give_zero():
    p = torch.tensor([0.9, 0.2, 0.6, 0.4], requires_grad=True)
    y = torch.tensor([1, 0, 1, 0])
    s = torch.tensor([0, 0, 1, 1])
    g = gap(p, y, s, "dp")
    g.backward()
    assert g.item() == pytest.approx(abs(0.55 - 0.5))
    assert p.grad.abs().sum() > 0
    only_one_group = gap(p.detach(), y, torch.zeros(4, dtype=torch.long), "eo")
    assert only_one_group.item() == 0.0
    with pytest.raises(ValueError, match="unknown fairness notion"):
        gap(p, y, s, "parity")


def test_permutation_floor_is_noise_of_a_group_blind_classifier():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 4000)
    s = rng.integers(0, 2, 4000)
    pred = y.copy()
    small = permutation_floor(pred[:60], y[:60], s[:60], "dp", 50, 0)
    large = permutation_floor(pred, y, s, "dp", 50, 0)
    assert 0 < large < small  # the floor shrinks with sample size
    assert large < 0.05
    assert np.isnan(permutation_floor(pred, y, s, "dp", 0, 0))


def test_vectorised_permutation_gaps_equal_the_gap_of_each_relabelling():
    from tenfold.studies.fairness.metrics import noise_floor, permutation_gaps

    rng = np.random.default_rng(5)
    y, s, pred = rng.integers(0, 2, 300), rng.integers(0, 2, 300), rng.integers(0, 2, 300)
    for notion in ("dp", "eo", "eopp"):
        got = permutation_gaps(pred, y, s, notion, 40, seed=9)
        perms = np.random.default_rng(9).permuted(np.tile(s.astype(np.int8), (40, 1)), axis=1)
        want = [
            float(gap(torch.tensor(pred).double(), torch.tensor(y), torch.tensor(p.astype(np.int64)), notion))
            for p in perms
        ]
        assert np.allclose(got, want, atol=1e-12)
        mean, q = noise_floor(pred, y, s, notion, 40, 9, 0.95)
        assert mean == pytest.approx(np.mean(want)) and q == pytest.approx(np.quantile(want, 0.95)) and q > mean
    # a cell a relabelling leaves empty contributes 0 (as `gap`), never NaN
    assert np.all(np.isfinite(permutation_gaps(np.array([1, 0]), np.array([1, 1]), np.array([0, 1]), "eo", 5, 0)))
    with pytest.raises(ValueError, match="unknown fairness notion"):
        permutation_gaps(pred, y, s, "parity", 3, 0)


def test_report_gives_the_positive_rate():
    r = report(np.array([1, 1, 0, 0]), np.array([1, 0, 1, 0]), np.array([0, 0, 1, 1]))
    assert r["pos"] == 0.5 and r["acc"] == 0.5 and r["gap_dp"] == 1.0
