"""The minimax study's claim, headline, tables and figures from given accuracies (no training, no Prefect/MLflow)."""

import pytest

from tenfold.registry import validate_section
from tenfold.studies.minimax.outcome import Measured, aggregate, build, px, seed_interval, write_figures

P = validate_section(
    "minimax", {"train": {"seeds": 2}, "eval": {"alphas": [0.0, 2.0], "claim_alpha": 2.0, "uniform_tolerance": 2.0}}
)
SEEDS = [5, 9]


def run(clean, uniform, weighted, shifted):
    return {"clean": clean, "robust": {0.0: uniform, 2.0: weighted}, "shifted": shifted}


def measured(at: list[tuple], wat: list[tuple], data_name: str = "mnist5k") -> Measured:
    """Per seed (uniform robust, weighted robust at alpha_pgd 2) of `at` and `weighted_at`."""
    per = {}
    for s, (u, w) in zip(SEEDS, at):
        per[("at", s)] = run(0.9, u, w, 0.3)
    for s, (u, w) in zip(SEEDS, wat):
        per[("weighted_at", s)] = run(0.88, u, w, 0.35)
    hist = [{"epoch": 1, "loss": 1.0, "weights": [1.0, 2.0, 3.0]}, {"epoch": 2, "loss": 0.5, "weights": [1.0, 1.5]}]
    return Measured(per, SEEDS, {"at": hist, "weighted_at": hist}, [3, 5, 8], data_name, "src", 2000, 500)


def test_claim_holds_when_weighted_gains_without_uniform_drop():
    out = build(P, measured([(0.50, 0.40), (0.52, 0.42)], [(0.50, 0.45), (0.51, 0.47)]))
    (c,) = out.claims
    assert c.id == "weighted_beats_uniform" and c.holds
    assert c.measured == pytest.approx(5.0)  # mean over seeds, in points
    assert out.headline["uniform_drop_points"] == pytest.approx(0.5)
    assert out.headline["weighted_gain_points"] == pytest.approx(5.0)
    assert out.headline["shift_gain_points"] == pytest.approx(5.0)
    assert out.details["per_seed"]["at/seed5"]["robust"] == {"0.0": 0.50, "2.0": 0.40}
    assert out.details["shift"] == {"classes": [3, 5, 8], "mass": 0.8, "gain_points": pytest.approx(5.0)}
    assert out.passed == (0.50 >= P.accept_min_robust_acc)
    assert out.metrics()["claims"]["weighted_beats_uniform"]["holds"] is True


def test_claim_fails_on_a_large_uniform_drop_or_no_gain():
    drop = build(P, measured([(0.60, 0.40), (0.60, 0.40)], [(0.55, 0.45), (0.55, 0.45)]))
    assert drop.claims[0].measured == pytest.approx(5.0) and not drop.claims[0].holds  # drop 5 > 2 points
    none = build(P, measured([(0.5, 0.4), (0.5, 0.4)], [(0.5, 0.4), (0.5, 0.4)]))
    assert none.claims[0].measured == 0.0 and not none.claims[0].holds
    assert none.notes[0].startswith("Not reproduced")


def test_tables_report_mean_and_std_over_seeds():
    m = measured([(0.50, 0.40), (0.52, 0.44)], [(0.50, 0.45), (0.51, 0.47)])
    res = aggregate(P, m)
    assert res["at"]["robust"][2.0][0] == pytest.approx(0.42) and res["at"]["robust"][2.0][1] > 0
    out = build(P, m)
    acc = out.tables["accuracy"]
    assert acc["columns"] == ["trainer", "clean", "alpha_pgd 0", "alpha_pgd 2", "shifted to [3, 5, 8]"]
    assert acc["rows"][0][0] == "at" and acc["rows"][0][3].startswith("0.420 ± ")
    assert len(out.tables["per_seed"]["rows"]) == 4 and len(out.headline) <= 20
    assert out.details["seeds"] == SEEDS


def test_figures_are_written_and_listed(tmp_path):
    m = measured([(0.5, 0.4), (0.5, 0.4)], [(0.5, 0.45), (0.5, 0.45)])
    out = build(P, m)
    write_figures(out, P, m, tmp_path)
    assert [f["path"] for f in out.figures] == [
        "plots/minimax/robust_vs_alpha.png",
        "plots/minimax/weights_weighted_at.png",
    ]
    header = (tmp_path / "robust_vs_alpha.csv").read_text().splitlines()[0]
    assert header == "alpha_pgd,at,weighted_at,at_std,weighted_at_std"
    assert len((tmp_path / "weight_quantiles.csv").read_text().splitlines()) == 3  # header + 2 epochs of weighted_at
    assert all((tmp_path / f["path"].split("/")[-1]).exists() for f in out.figures)


def test_seed_spread_of_the_claim_with_a_t_interval():
    out = build(P, measured([(0.50, 0.40), (0.52, 0.42)], [(0.50, 0.45), (0.51, 0.49)]))
    sp = out.details["claim_seed_spread"]
    assert sp["gain_points"] == pytest.approx([5.0, 7.0]) and sp["uniform_drop_points"] == pytest.approx([0.0, 1.0])
    # mean 6, sd sqrt(2), n 2: standard error 1, t(0.975, 1 df) = 12.706
    assert sp["gain_interval95"] == pytest.approx((6 - 12.706, 6 + 12.706), abs=1e-3)
    assert "t-interval over seeds" in out.notes[0]
    assert seed_interval([3.0]) is None and seed_interval([2.0, 2.0]) == (2.0, 2.0)


def test_notes_name_the_data_and_the_codes_setting_for_it():
    cifar = build(P, measured([(0.5, 0.4)] * 2, [(0.5, 0.45)] * 2, data_name="cifar10"))
    digits = build(P, measured([(0.5, 0.4)] * 2, [(0.5, 0.45)] * 2, data_name="mnist5k"))
    assert any("Data: cifar10" in n and "ResNet-18, eps 8/255" in n for n in cifar.notes)
    assert any("Data: mnist5k" in n and "SmallCNN, eps 0.3" in n for n in digits.notes)
    assert out_eps(cifar) == "8/255" and out_eps(digits) == "8/255"  # P is the CPU default: eps 8/255
    assert cifar.details["data"] == {"name": "cifar10", "source": "src", "n_train": 2000, "n_test": 500}


def out_eps(out) -> str:
    return out.description.rsplit("eps ", 1)[1].rstrip(".")


def test_px_writes_whole_8bit_levels_as_fractions():
    assert px(8 / 255) == "8/255" and px(2 / 255) == "2/255" and px(0.3) == "0.3" and px(0.0031) == "0.0031"
