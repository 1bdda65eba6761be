"""The fairness study's claim, headline, tables, notes and figures from given training histories (no training, no
Prefect, no MLflow)."""

import numpy as np
import pytest

from tenfold.registry import validate_section
from tenfold.studies.fairness.data import FairData
from tenfold.studies.fairness.outcome import Measured, build, epoch_curve, size_curve, width_curve, write_figures
from tenfold.studies.fairness.study import RunSpec, main_spec, plan_runs, results_frame

P = validate_section(
    "fairness",
    {
        "faces": {"tasks": ["age_gender"], "main": "age_gender", "n_train": 200, "n_val": 50, "n_test": 400},
        "face_model": {"archs": ["cnn", "resnet"], "widths": [8, 16], "resnet_widths": [8], "headline": "cnn"},
        "face_train": {
            "methods": ["erm", "penalty", "lagrangian"],
            "notions": ["eo", "dp"],
            "epochs": 4,
            "eval_epochs": [2, 4],
            "seeds": 2,
            "epsilon": 0.05,
        },
        "curves": {"sizes": [100, 400]},
        "helps": {"methods": ["lagrangian"], "augment": True},
        "data": {"datasets": ["hearts"]},
        "model": {"widths": [32]},
        "train": {"methods": ["erm", "lagrangian"], "notions": ["eo"], "seeds": 1, "epochs": 4, "eval_epochs": [4]},
        "eval": {"claim_notion": "eo", "overfit_ratio": 2.0, "floor_quantile": 0.95, "accept_max_train_gap": 0.1},
    },
)


def data(name: str, n_cell: int = 50, n_test_cell: int = 100) -> FairData:
    """Every (y, s) cell of the training set has `n_cell` rows: the eo gap resolution is 1 / n_cell."""

    def cells(k):
        return np.repeat([0, 0, 1, 1], k), np.tile(np.repeat([0, 1], k), 2)

    y, s = cells(n_cell)
    yt, st = cells(n_test_cell)
    x = np.zeros((len(y), 3, 4, 4), np.float32)
    return FairData(
        name,
        x,
        y,
        s,
        np.zeros((len(yt), 3, 4, 4), np.float32),
        yt,
        st,
        "generated",
        "y",
        "s",
        x_val=x[:20],
        y_val=y[:20],
        s_val=s[:20],
    )


def record(epoch, train_gap, test_gap, floorq=0.03, val_gap=None, val_acc=0.8, test_acc=0.8, pos=0.3):
    rec = {
        "epoch": epoch,
        "lambda": 0.0,
        "train_acc": 0.95,
        "test_acc": test_acc,
        "val_acc": val_acc,
        "train_pos": pos,
        "test_pos": pos,
    }
    for nt in ("dp", "eo", "eopp"):
        rec[f"train_gap_{nt}"], rec[f"test_gap_{nt}"] = train_gap, test_gap
        rec[f"val_gap_{nt}"] = test_gap if val_gap is None else val_gap
        rec[f"test_floor_{nt}"], rec[f"test_floorq_{nt}"] = floorq / 2, floorq
    return rec


def measured(
    train_gap=0.01, test_gap=0.12, floorq=0.03, erm_gap=0.0, seed_spread=0.0, hearts_floorq=0.3, pos=0.3, p=P
) -> Measured:
    """Every planned run: constrained nets end at `train_gap` / `test_gap` (+- seed_spread by seed; twice the
    train gap and a smaller held-out gap at epoch 2), erm at `erm_gap` / `test_gap`; what-helps variants and the
    larger training set halve the test gap; hearts has a test gap within its floor."""
    runs = []
    for spec in plan_runs(p):
        sign = 1 if spec.seed == 0 else -1
        if spec.dataset == "hearts":
            hist = [record(4, 0.02, 0.1, hearts_floorq)]
        else:
            te = test_gap + sign * seed_spread
            if spec.variant != "base" or spec.n_train == 400:
                te = te / 2
            tr = erm_gap if spec.method == "erm" else train_gap
            hist = [
                record(2, 2 * tr, te, floorq, val_gap=te / 4, val_acc=0.79),
                record(4, tr, te, floorq, val_acc=0.8, pos=pos),
            ]
        runs.append((spec, hist))
    baselines = {
        ("utk_age_gender", "eo"): {
            "train_acc": 0.7,
            "test_acc": 0.69,
            "train_gap_eo": 0.03,
            "test_gap_eo": 0.04,
            "test_floorq_eo": 0.03,
        },
        ("utk_age_gender+ms1m", "eo"): {
            "train_acc": 0.8,
            "test_acc": 0.78,
            "train_gap_eo": 0.02,
            "test_gap_eo": 0.06,
            "test_floorq_eo": 0.03,
        },
    }
    sets = {"utk_age_gender": data("utk_age_gender", 200), "hearts": data("hearts", 10, 5)}
    return Measured(results_frame(runs), sets, baselines, len(runs))


def test_claim_holds_when_met_on_train_twice_on_test_and_above_the_noise_floor():
    out = build(P, measured(train_gap=0.01, test_gap=0.12, floorq=0.03, seed_spread=0.02))
    (c,) = out.claims
    assert c.id == "fairness_overfits" and c.measured == pytest.approx(12.0) and c.holds
    h = out.headline
    assert h["fairness_overfits_ratio"] == pytest.approx(12.0) and h["meets_constraint"] and h["above_noise_floor"]
    assert h["constrained_runs"] == 4  # penalty and lagrangian x 2 seeds, CNN width 16, n = 200
    assert (h["main_train_gap"], h["main_test_gap"], h["main_test_floorq"]) == pytest.approx((0.01, 0.12, 0.03))
    # per-seed means 0.14 and 0.10: t-interval with 1 degree of freedom (t = 12.706)
    assert (h["main_test_gap_lo"], h["main_test_gap_hi"]) == pytest.approx(
        (0.12 - 12.706 * 0.02, 0.12 + 12.706 * 0.02), abs=1e-3
    )
    assert h["erm_test_gap"] == pytest.approx(0.12) and h["fairlearn_test_gap"] == 0.04
    assert h["fairlearn_embedding_test_gap"] == 0.06  # the reduction on the MS1M embeddings
    assert len(h) <= 20 and out.passed
    fl = {(r[0], r[1]): r for r in out.tables["fairlearn"]["rows"]}
    assert fl[("utk_age_gender+ms1m", "eo")][5] == 0.06 and "embeddings" in out.tables["fairlearn"]["title"]
    note = next(n for n in out.notes if n.startswith("Classical baseline"))
    assert (
        "pixels (PCA): train/test eo gap 0.030/0.040" in note
        and "ms1m embeddings: train/test eo gap 0.020/0.060" in note
    )
    assert "4 of 4 single runs meet all three conditions; verdict: holds" in c.note
    assert out.notes[0].startswith("Reproduced at this scale: `fairness_overfits` measured 12.000")


def test_a_test_gap_within_the_noise_floor_never_holds():
    out = build(P, measured(train_gap=0.0, test_gap=0.04, floorq=0.05))
    (c,) = out.claims
    assert c.measured == pytest.approx(0.04 / (1 / 200)) and not c.holds  # ratio 8 but inside the floor
    assert "verdict: inconclusive" in c.note and not out.headline["above_noise_floor"]
    rows = {r[0]: r for r in out.tables["overfit_by_dataset"]["rows"]}
    assert rows["utk_age_gender/eo"][-1].startswith("inconclusive")
    assert rows["hearts/eo"][-1].startswith("inconclusive")  # 20 test rows: test gap 0.1 inside floor q 0.3


def test_claim_fails_when_the_train_gap_misses_the_constraint_or_the_ratio():
    out = build(P, measured(train_gap=0.08, test_gap=0.4))
    assert not out.claims[0].holds and "constraint not met on train" in out.claims[0].note
    assert out.passed  # the alias check only needs the train gap below 0.1
    assert not build(P, measured(train_gap=0.12, test_gap=0.4)).passed
    low = build(P, measured(train_gap=0.04, test_gap=0.06, floorq=0.03))
    assert low.claims[0].measured == pytest.approx(1.5) and not low.claims[0].holds
    assert "above noise but below the ratio" in low.claims[0].note


def test_curves_axes_helps_and_tables():
    m = measured(train_gap=0.01, test_gap=0.12)
    out = build(P, m)
    assert set(out.tables) == {
        "faces",
        "by_method",
        "capacity",
        "training_length",
        "training_size",
        "what_helps",
        "overfit_by_dataset",
        "fairlearn",
    }
    bm = {(r[0], r[1]): r for r in out.tables["by_method"]["rows"]}
    assert set(bm) == {(meth, n) for meth in ("erm", "penalty", "lagrangian") for n in ("eo", "dp")}
    assert bm[("lagrangian", "eo")][-1] == "holds" and bm[("erm", "eo")][5] == pytest.approx(0.12)
    from tenfold.studies.fairness.outcome import View

    v = View(P, m)
    assert [(r["arch"], r["width"]) for r in width_curve(v)] == [("cnn", 8), ("cnn", 16), ("resnet", 8)]
    ep = epoch_curve(v)
    assert [r["epoch"] for r in ep] == [2, 4] and ep[0]["c"]["train_gap"] == pytest.approx(0.02)
    assert [r["n_train"] for r in size_curve(v)] == [100, 200, 400]
    assert size_curve(v)[2]["c"]["test_gap"] == pytest.approx(0.06)
    helps = {r[0].split(" (")[0].split(" 0")[0]: r for r in out.tables["what_helps"]["rows"]}
    assert helps["as trained"][4] == pytest.approx(0.12)
    assert helps["early stopping on the held-out eo gap"][4] == pytest.approx(0.12)  # epoch 2: smaller held-out
    assert helps["early stopping on the held-out eo gap"][3] == pytest.approx(0.02)  # gap, train gap 2 x 0.01
    assert helps["weight decay"][4] == pytest.approx(0.06) and helps["augmentation"][4] == pytest.approx(0.06)
    assert "smaller capacity" in helps and helps["more data"][4] == pytest.approx(0.06)
    assert out.details["deep_net_runs"] == len(plan_runs(P)) and "curves" in out.details
    dp_rows = [r for r in out.tables["faces"]["rows"] if r[4] == "dp"]
    assert {r[2] for r in dp_rows} == {16}  # dp at the largest CNN width only
    assert any(n.startswith("What helps (lagrangian)") for n in out.notes)
    assert out.metrics()["claims"]["fairness_overfits"]["holds"] is True


def test_levelling_down_is_noted():
    out = build(P, measured(train_gap=0.0, test_gap=0.0, pos=0.01))
    assert any(n.startswith("Levelling down: 4 of 4") for n in out.notes)
    assert not any(n.startswith("Levelling down") for n in build(P, measured()).notes)


def test_no_constrained_run_means_no_claim_and_no_pass():
    m = measured()
    m.df = m.df[m.df.method == "erm"]
    out = build(P, m)
    assert not out.claims[0].holds and out.claims[0].measured is None and out.claims[0].note == "no constrained run"
    assert not out.passed and out.headline["constrained_runs"] == 0 and out.headline["main_test_gap"] is None


def test_main_spec_is_the_lagrangian_on_the_headline_net_at_its_largest_width():
    assert main_spec(P) == RunSpec("utk_age_gender", "lagrangian", "eo", 16, 0, "cnn", 200)
    res = P.model_copy(update={"face_model": P.face_model.model_copy(update={"headline": "resnet"})})
    assert main_spec(res) == RunSpec("utk_age_gender", "lagrangian", "eo", 8, 0, "resnet", 200)
    with pytest.raises(Exception, match="headline 'resnet' must be one of archs"):
        validate_section("fairness", {"face_model": {"archs": ["cnn"], "headline": "resnet"}})


def test_without_the_cnn_axis_only_the_headline_net_is_trained_and_reported(tmp_path):
    # the CPU default: archs [resnet] (the CNN capacity axis is in profile cpu-full)
    fm = {"archs": ["resnet"], "resnet_widths": [8], "headline": "resnet"}
    p = P.model_copy(update={"face_model": validate_section("fairness", {"face_model": fm}).face_model})
    assert {s.arch for s in plan_runs(p) if s.dataset.startswith("utk")} == {"resnet"}
    assert len(plan_runs(p)) < len(plan_runs(P))
    m = measured(p=p)
    out = build(p, m)
    assert [r[:2] for r in out.tables["capacity"]["rows"]] == [["resnet", 8]]
    assert not any(r[0].startswith("smaller capacity") for r in out.tables["what_helps"]["rows"])
    assert out.metrics()["claims"]["fairness_overfits"]["holds"] is True
    write_figures(out, p, m, tmp_path)
    assert (tmp_path / "gap_vs_width.png").exists()
    assert (tmp_path / "gap_vs_width.csv").read_text().splitlines()[1].startswith("resnet,8,")
    assert "ResNet width" in out.figures[1]["caption"]
    assert "CNNs" not in out.description and "ResNet-style nets of widths [8]" in out.description
    assert any(n.startswith("Not run here: the capacity axis") for n in out.notes)
    p0 = p.model_copy(update={"curves": validate_section("fairness", {"curves": {"sizes": []}}).curves})
    no_sizes = build(p0, measured(p=p0))
    assert [r["n_train"] for r in no_sizes.details["curves"]["size"]] == [200]
    assert any("and the training-set-size axis" in n for n in no_sizes.notes)
    assert not any(n.startswith("Not run here") for n in build(P, measured()).notes)  # P has both axes
    with pytest.raises(Exception, match="archs must name at least one net"):
        validate_section("fairness", {"face_model": {"archs": []}})


def test_figures_are_written_and_listed(tmp_path):
    m = measured()
    out = build(P, m)
    write_figures(out, P, m, tmp_path)
    lines = (tmp_path / "gap_vs_epoch.csv").read_text().splitlines()
    assert lines[0] == "epoch,train_gap,test_gap,test_gap_lo,test_gap_hi,test_floorq,erm_test_gap"
    assert lines[1].startswith("2,0.02,0.12,0.12,0.12,0.03,")
    assert (tmp_path / "gap_vs_size.csv").read_text().splitlines()[1].startswith("100,")
    assert (tmp_path / "runs.csv").exists()
    assert [f["path"] for f in out.figures] == [
        "plots/fairness/gap_vs_epoch.png",
        "plots/fairness/gap_vs_width.png",
        "plots/fairness/gap_vs_size.png",
    ]
    assert all((tmp_path / f["path"].split("/")[-1]).exists() for f in out.figures)
