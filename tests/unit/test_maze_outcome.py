"""The maze study's claims, headline and notes from given curves (no training, no Prefect, no MLflow)."""

import pytest

from tenfold.registry import validate_section
from tenfold.studies.maze.outcome import Measured, build, iteration_counts, write_figures

P = validate_section(
    "maze",
    {
        "data": {"train_size": 5, "test_sizes": [5, 7, 9]},
        "model": {"train_iters": 3},
        "eval": {"test_iters": [2, 6], "extrapolation_size": 7, "extrapolation_target": 0.9},
    },
)


def curves(at_train: float, best: float) -> dict:
    """Exact match per size: perfect on the training size; larger sizes `at_train` at 3 iterations, `best` at 6."""
    return {5: {2: 0.9, 3: 1.0, 6: 1.0}, 7: {2: 0.1, 3: at_train, 6: best}, 9: {2: 0.0, 3: at_train / 2, 6: best / 2}}


def test_extrapolation_holds_when_more_iterations_solve_larger_mazes():
    out = build(P, Measured(curves(0.4, 0.95), [{"epoch": 1, "loss": 0.5}], 1000, 64))
    c = {x.id: x for x in out.claims}
    assert c["extrapolation"].measured == 0.95 and c["extrapolation"].holds
    assert c["more_iterations_help"].measured == pytest.approx(0.475 - 0.2) and c["more_iterations_help"].holds
    assert out.passed  # training size solved at the training iteration count
    assert out.headline["extrapolation_best_iters"] == 6 and out.headline["extrapolation_acc_at_train_iters"] == 0.4
    assert out.metrics()["claims"]["extrapolation"] == {"measured": 0.95, "target": 0.9, "holds": True}


def test_claims_fail_when_iterating_longer_does_not_help():
    out = build(P, Measured(curves(0.5, 0.5), [], 1000, 64))
    c = {x.id: x for x in out.claims}
    assert not c["extrapolation"].holds and not c["more_iterations_help"].holds
    assert c["more_iterations_help"].measured == 0.0
    assert out.headline["final_train_loss"] is None


def test_overthinking_note_and_tables():
    acc = curves(0.4, 0.95)
    acc[7][3], acc[7][6] = 0.8, 0.5  # peaks at 3 iterations then falls
    out = build(P, Measured(acc, [], 10, 64, twins=[[2, 12, 0.7, 100, 0.72, 300]]))
    assert any("overthinking" in n and "Size 7" in n for n in out.notes)
    assert out.tables["exact_match"]["columns"] == ["size", "2 it", "3 it", "6 it"]
    assert out.headline["twin_2_recurrent_acc"] == 0.7 and out.headline["twin_2_feedforward_acc"] == 0.72
    assert iteration_counts(P) == [2, 3, 6]


def test_figures_are_written_and_listed(tmp_path):
    m = Measured(curves(0.4, 0.95), [{"epoch": 1, "loss": 0.5}], 10, 64)
    out = build(P, m)
    write_figures(out, P, m, tmp_path)
    assert (tmp_path / "acc_vs_iters.csv").read_text().splitlines()[0].startswith("iters,train_size")
    assert [f["path"] for f in out.figures] == ["plots/maze/acc_vs_iters.png", "plots/maze/acc_vs_size.png"]
    assert all((tmp_path / f["path"].split("/")[-1]).exists() for f in out.figures)
