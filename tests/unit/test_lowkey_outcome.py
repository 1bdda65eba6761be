"""The lowkey study's claims, headline, tables and notes from given identification rates (no training, no
filtering, no Prefect, no MLflow)."""

import numpy as np
import pytest

from tenfold.registry import validate_section
from tenfold.studies.lowkey.outcome import (
    SWEEP_COLUMNS,
    Measured,
    build,
    example_indices,
    setting_label,
    sweep_row,
    write_figures,
)

P = validate_section("lowkey", {"eval": {"ranks": [1, 5]}, "sweep": {"points": [{"lr": 0.01}]}})
NAMES = [s.name for s in P.ensemble] + [P.eval.heldout.name]


def measured(dlib_filtered=0.05, ssim=0.9, heldout_filtered=0.05, train_acc=0.95, sweep=True) -> Measured:
    sur = {n: {"clean": {1: 1.0, 5: 1.0}, "filtered": {1: 0.2, 5: 0.6}} for n in NAMES}
    sur[P.eval.heldout.name]["filtered"] = {1: heldout_filtered, 5: 0.5}
    dl = {
        "clean": {"ranks": {1: 0.95, 5: 1.0}, "detected": 1.0},
        "filtered": {"ranks": {1: dlib_filtered, 5: 0.3}, "detected": 0.9},
    }
    rows = (
        [
            sweep_row("default", P.attack, np.array([ssim]), dl["filtered"], heldout_filtered),
            sweep_row(
                "it50 lr0.01 c0.05 s2",
                P.attack_at(P.sweep.points[0]),
                np.array([0.7]),
                {"ranks": {1: 0.0, 5: 0.1}, "detected": 0.8},
                0.0,
            ),
        ]
        if sweep
        else None
    )
    return Measured(
        n_train_images=200,
        train_subjects=20,
        eval_subjects=20,
        n_probes=4,
        found=np.array([True, True, False]),
        found_filtered=np.array([True, False, True, True]),
        surrogates=sur,
        dlib=dl,
        ssim=np.array([ssim, ssim, ssim - 0.02, ssim + 0.02]),
        psnr=np.full(4, 40.0),
        feature_distance=np.full(4, 0.1),
        attack_seconds=8.0,
        histories={n: [{"epoch": 1, "loss": 2.0, "train_acc": train_acc}] for n in NAMES},
        sweep_rows=rows,
        sweep_probes=20 if sweep else 0,
        examples=(np.zeros((2, 8, 8, 3), np.uint8), np.zeros((2, 8, 8, 3), np.uint8), np.ones(2)),
    )


def test_claims_hold_when_the_filter_fools_dlib_and_the_heldout_model_invisibly():
    out = build(P, measured())
    c = {x.id: x for x in out.claims}
    assert c["dlib_rank1_filtered"].measured == 0.05 and c["dlib_rank1_filtered"].holds
    assert c["lowkey_ssim"].measured == pytest.approx(0.9) and c["lowkey_ssim"].holds
    assert c["surrogate_rank1_filtered"].holds
    assert out.passed  # dlib identifies clean probes (0.95 >= 0.9) and the surrogates trained (0.95 >= 0.9)
    assert out.headline["dlib_rank1_clean"] == 0.95 and out.headline["ensemble_rank1_filtered"] == pytest.approx(0.2)
    assert out.headline["tradeoff_dlib_rank1_meeting_ssim"] == 0.05 and len(out.headline) <= 20
    assert out.notes[0] == "Reached: `dlib_rank1_filtered` measured 0.050 (target <= 0.1)."


def test_claims_fail_when_dlib_still_identifies_or_the_filter_is_visible():
    out = build(P, measured(dlib_filtered=0.5, ssim=0.7, heldout_filtered=0.8, train_acc=0.5))
    assert not any(c.holds for c in out.claims)
    assert not out.passed
    assert out.notes[1].startswith("Not reached: `lowkey_ssim` measured 0.700")
    assert out.headline["tradeoff_dlib_rank1_meeting_ssim"] is None  # no setting reaches SSIM 0.85


def test_tables_details_and_sweep_summary():
    out = build(P, measured())
    ident = out.tables["identification"]
    assert ident["columns"] == ["model", "role", "clean rank-1", "clean rank-5", "filtered rank-1", "filtered rank-5"]
    assert [r[1] for r in ident["rows"]] == ["ensemble"] * 4 + ["held-out", "third party"]
    assert out.tables["quality"]["rows"] == [[0.9, 0.88, 40.0, 2.0]]  # 8 s over 4 probes
    r = out.results("lowkey", "2101.07922", "t")
    assert r["identification"]["dlib"]["filtered"]["ranks"] == {"1": 0.05, "5": 0.3}
    assert r["quality"]["seconds_per_face"] == 2.0 and r["training"][NAMES[0]]["train_acc"] == 0.95
    t = r["tradeoff"]
    assert t["columns"] == SWEEP_COLUMNS and t["probes"] == 20 and t["rows"][0][0] == "default"
    assert t["meets_ssim"]["setting"] == "default" and t["lowest_rank1"]["dlib_rank1"] == 0.0
    assert "MTCNN found a face in 2/3 clean images used and 3/4 filtered probes" in out.notes[-1]
    no_sweep = build(P, measured(sweep=False))
    assert no_sweep.details["tradeoff"] is None and "tradeoff" not in no_sweep.tables


def test_sweep_helpers():
    assert setting_label(P.attack_at(P.sweep.points[0])) == "it50 lr0.01 c0.05 s2"
    assert list(example_indices(10, 3)) == [0, 4, 9] and list(example_indices(2, 6)) == [0, 1]


def test_figures_are_written_and_listed(tmp_path):
    m = measured()
    out = build(P, m)
    write_figures(out, P, m, tmp_path)
    assert (tmp_path / "identification.csv").read_text().splitlines()[0].startswith("model,role,clean rank-1")
    assert len((tmp_path / "tradeoff.csv").read_text().strip().splitlines()) == 3
    assert [f["path"] for f in out.figures] == [
        "plots/lowkey/rank1.png",
        "plots/lowkey/tradeoff.png",
        "plots/lowkey/examples.png",
    ]
    assert all((tmp_path / f["path"].split("/")[-1]).exists() for f in out.figures)
