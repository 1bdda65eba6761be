"""The fairness study's claim, headline, tables and notes from given training histories (no training, no Prefect,
no MLflow)."""

import numpy as np
import pytest

from tenfold.registry import validate_section
from tenfold.studies.fairness.data import FairData
from tenfold.studies.fairness.outcome import Measured, build, gap_by_epoch, gap_by_width, write_figures
from tenfold.studies.fairness.study import RunSpec, main_spec, results_frame

P = validate_section(
    "fairness",
    {
        "data": {"datasets": ["hearts", "german"], "main": "hearts"},
        "model": {"widths": [8, 16], "depth": 2},
        "train": {
            "methods": ["erm", "penalty", "lagrangian"],
            "notions": ["eo"],
            "epochs": 4,
            "eval_epochs": [2, 4],
            "seeds": 1,
            "epsilon": 0.05,
        },
        "eval": {"claim_notion": "eo", "overfit_ratio": 2.0, "accept_max_train_gap": 0.1},
    },
)


def data(name: str, n_cell: int = 50) -> FairData:
    """Every (y, s) cell of the training set has `n_cell` rows: the eo gap resolution is 1 / n_cell."""
    y = np.repeat([0, 0, 1, 1], n_cell)
    s = np.tile(np.repeat([0, 1], n_cell), 2)
    x = np.zeros((len(y), 3), np.float32)
    return FairData(name, x, y, s, x[:40], y[:40], s[:40], "generated", "y", "s")


def record(epoch: int, train_gap: float, test_gap: float, floor: float | None = None) -> dict:
    rec = {"epoch": epoch, "lambda": 0.0, "train_acc": 0.9, "test_acc": 0.8}
    for nt in ("dp", "eo", "eopp"):
        rec[f"train_gap_{nt}"], rec[f"test_gap_{nt}"] = train_gap, test_gap
        if floor is not None:
            rec[f"test_floor_{nt}"] = floor
    return rec


def measured(train_gap: float, test_gap: float, erm_gap: float = 0.0) -> Measured:
    """Constrained nets reach `train_gap` / `test_gap` at the last epoch (twice that at epoch 2); erm `erm_gap`."""
    runs = []
    for ds in ("hearts", "german"):
        for w in (8, 16):
            for m in ("erm", "penalty", "lagrangian"):
                g = erm_gap if m == "erm" else train_gap
                hist = [record(2, 2 * g, test_gap), record(4, g, test_gap, floor=0.05)]
                runs.append((RunSpec(ds, m, "none" if m == "erm" else "eo", w, 0), hist))
    baselines = {("hearts", "eo"): {"train_acc": 0.7, "test_acc": 0.69, "train_gap_eo": 0.03, "test_gap_eo": 0.1}}
    return Measured(results_frame(runs), {"hearts": data("hearts"), "german": data("german", 5)}, baselines, len(runs))


def test_claim_holds_when_the_train_constraint_holds_and_the_test_gap_is_large():
    out = build(P, measured(train_gap=0.04, test_gap=0.2))
    (c,) = out.claims
    assert c.id == "fairness_overfits" and c.measured == pytest.approx(5.0) and c.holds
    h = out.headline
    assert h["fairness_overfits_ratio"] == pytest.approx(5.0) and h["meets_constraint"]
    assert h["constrained_runs"] == 2  # penalty and lagrangian at the largest width
    assert (h["main_train_gap"], h["main_test_gap"], h["main_test_noise_floor"]) == pytest.approx((0.04, 0.2, 0.05))
    assert out.details["overfit_by_dataset"]["hearts"]["ratio"] == h["fairness_overfits_ratio"]
    assert out.passed
    assert "train gap 0.040, test gap 0.200, test noise floor 0.050" in c.note
    assert out.notes[0].startswith("Reproduced at this scale: `fairness_overfits` measured 5.000")
    # german's 5-row cells: a train gap below 1/5 is not measurable, so its ratio is 0.2 / 0.2
    assert "holds on 1 of 2: hearts" in out.notes[3]
    assert out.details["overfit_by_dataset"]["german"]["ratio"] == pytest.approx(1.0)


def test_claim_fails_when_the_train_gap_misses_the_constraint():
    out = build(P, measured(train_gap=0.08, test_gap=0.4))
    (c,) = out.claims
    assert c.measured == pytest.approx(5.0) and not c.holds  # ratio large, but train gap 0.08 > epsilon 0.05
    assert out.passed  # the alias check only needs the train gap below 0.1
    assert not build(P, measured(train_gap=0.12, test_gap=0.4)).passed


def test_zero_train_gap_is_counted_at_the_resolution():
    out = build(P, measured(train_gap=0.0, test_gap=0.1))
    assert out.claims[0].measured == pytest.approx(0.1 / (1 / 50)) and out.claims[0].holds
    assert "= 0.020) in the ratio" in out.notes[1]


def test_tables_details_and_curves():
    m = measured(train_gap=0.04, test_gap=0.2, erm_gap=0.0)
    out = build(P, m)
    assert set(out.tables) == {"main", "training_length", "capacity", "datasets", "overfit_by_dataset", "fairlearn"}
    assert out.tables["training_length"]["rows"] == [[2, 0.9, 0.8, 0.08, 0.2], [4, 0.9, 0.8, 0.04, 0.2]]
    assert [r[0] for r in out.tables["capacity"]["rows"]] == [8, 16]
    assert out.tables["fairlearn"]["rows"] == [["hearts", "eo", 0.7, 0.69, 0.03, 0.1]]
    assert out.details["baselines"] == {"hearts/eo": m.baselines[("hearts", "eo")]}
    assert out.details["erm_reference"]["train_gap"] == 0.0 and out.details["deep_net_runs"] == 12
    assert out.headline["erm_train_gap"] == 0.0 and out.headline["erm_test_gap"] == 0.2
    assert any(n.startswith("Unconstrained ERM nets") for n in out.notes)
    assert list(gap_by_epoch(P, m.df).index) == [2, 4]
    by_width, floor = gap_by_width(P, m.df)
    assert list(by_width.index) == [8, 16] and list(floor) == [0.05, 0.05]
    assert out.metrics()["claims"]["fairness_overfits"]["holds"] is True


def test_no_constrained_run_means_no_claim_and_no_pass():
    m = measured(0.04, 0.2)
    m.df = m.df[m.df.method == "erm"]
    out = build(P, m)
    assert not out.claims[0].holds and out.claims[0].measured is None and out.claims[0].note == "no constrained run"
    assert not out.passed and out.headline["constrained_runs"] == 0 and out.headline["main_test_gap"] is None


def test_main_spec_is_the_lagrangian_run_at_the_largest_width():
    assert main_spec(P) == RunSpec("hearts", "lagrangian", "eo", 16, 0)


def test_figures_are_written_and_listed(tmp_path):
    m = measured(0.04, 0.2)
    out = build(P, m)
    write_figures(out, P, m, tmp_path)
    assert (tmp_path / "gap_vs_epoch.csv").read_text().splitlines() == [
        "epoch,train_gap,test_gap",
        "2,0.08,0.2",
        "4,0.04,0.2",
    ]
    assert (tmp_path / "runs.csv").exists()
    assert [f["path"] for f in out.figures] == ["plots/fairness/gap_vs_epoch.png", "plots/fairness/gap_vs_width.png"]
    assert all((tmp_path / f["path"].split("/")[-1]).exists() for f in out.figures)
