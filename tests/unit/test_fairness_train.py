"""Constrained training, the fairlearn baseline, the experiment grid and the claim's reductions."""

import numpy as np
import pytest
import torch

from tenfold.core.seeds import seeded
from tenfold.registry import ParamsError, validate_section
from tenfold.studies.fairness.data import FairData
from tenfold.studies.fairness.models import Adversary, make_model
from tenfold.studies.fairness.params import FairnessParams, FairnessTrain
from tenfold.studies.fairness.study import (
    RunSpec,
    early_stopped,
    gap_resolution,
    plan_runs,
    results_frame,
    run_setup,
    seed_interval,
    summarize,
)
from tenfold.studies.fairness.train import _project_out, augment_batch, fairlearn_baseline, train_fair


def _biased(n=400, seed=0):
    """Group s shifts the informative feature, so an unconstrained model's positive rate differs by group."""
    rng = np.random.default_rng(seed)
    s = rng.integers(0, 2, n)
    y = (rng.random(n) < np.where(s == 1, 0.75, 0.25)).astype(np.int64)
    x = np.stack([y + 0.8 * rng.standard_normal(n) + 0.5 * s, rng.standard_normal(n)], 1).astype(np.float32)
    h = n // 2
    return FairData("toy", x[:h], y[:h], s[:h], x[h:], y[h:], s[h:], "generated", "y", "s")


def _cfg(**kw):
    base = dict(epochs=30, eval_epochs=[30], batch_size=200, lr=0.01, epsilon=0.02, dual_lr=5.0, penalty_weight=5.0)
    return FairnessTrain(**{**base, **kw})


def _final_dp(method, data):
    torch.set_num_threads(1)
    model = seeded(0, lambda: make_model((2,), 16, 1))
    return train_fair(model, data, method, "dp", _cfg(), torch.device("cpu"), 0)[-1]


def test_constrained_methods_shrink_the_training_gap_below_erm():
    data = _biased()
    erm = _final_dp("erm", data)
    assert erm["train_gap_dp"] > 0.3
    for method in ("penalty", "lagrangian"):
        assert _final_dp(method, data)["train_gap_dp"] < erm["train_gap_dp"] / 2


def test_lagrange_multiplier_grows_while_the_constraint_is_violated():
    data = _biased()
    rec = _final_dp("lagrangian", data)
    assert rec["lambda"] > 0


def test_adversarial_debiasing_trains_and_is_deterministic():
    data = _biased(200)
    runs = []
    for _ in range(2):
        model = seeded(0, lambda: make_model((2,), 8, 1))
        runs.append(
            train_fair(
                model,
                data,
                "adversarial",
                "eo",
                _cfg(epochs=5, eval_epochs=[5], batch_size=50),
                torch.device("cpu"),
                3,
                noise_permutations=3,
            )[-1]
        )
    assert runs[0] == runs[1]
    assert {"train_gap_eo", "test_gap_eo", "test_floor_eo"} <= set(runs[0])
    assert Adversary("eo", 4).features(torch.ones(3), torch.tensor([1, 0, 1])).shape == (3, 3)


def test_projection_removes_the_adversary_direction():
    g, a = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0.0, 1.0, 1.0])
    out = _project_out(g, a)
    assert out @ a == pytest.approx(0.0, abs=1e-6)
    assert torch.equal(_project_out(g, torch.zeros(3)), g)


def test_fairlearn_reduction_cuts_the_parity_gap():
    from sklearn.linear_model import LogisticRegression

    from tenfold.studies.fairness.metrics import report

    data = _biased(300)
    plain = report(
        LogisticRegression().fit(data.x_train, data.y_train).predict(data.x_train), data.y_train, data.s_train
    )["gap_dp"]
    out = fairlearn_baseline(data, "dp", 0.02, 8, 0.01, 0)
    assert out["train_gap_dp"] < plain / 2 and out["train_acc"] > 0.5
    assert set(out) == {
        f"{split}_{k}" for split in ("train", "test") for k in ("acc", "pos", "gap_dp", "gap_eo", "gap_eopp")
    }
    floors = fairlearn_baseline(data, "dp", 0.02, 3, 0.01, 0, noise_permutations=10)
    assert {"test_floor_dp", "test_floorq_eo"} <= set(floors) and floors["test_floorq_dp"] >= floors["test_floor_dp"]


def test_fairlearn_on_images_uses_principal_components():
    from tenfold.studies.fairness.train import baseline_featurizer

    rng = np.random.default_rng(0)
    n = 120
    y, s = rng.integers(0, 2, n), rng.integers(0, 2, n)
    x = (rng.standard_normal((n, 3, 8, 8)) + y[:, None, None, None]).astype(np.float32)
    data = FairData(
        "img",
        x[:80],
        y[:80],
        s[:80],
        x[80:],
        y[80:],
        s[80:],
        "generated",
        "y",
        "s",
        x_val=x[:10],
        y_val=y[:10],
        s_val=s[:10],
    )
    feats = baseline_featurizer(data, 5, 0)(data.x_test)
    assert feats.shape == (40, 5)
    out = fairlearn_baseline(data, "eo", 0.05, 3, 0.01, 0, pca_components=5)
    assert out["test_acc"] > 0.7 and "val_gap_eo" in out


def test_plan_runs_faces_grid_axes_helps_and_secondary():
    p = FairnessParams.model_validate(
        {
            "faces": {"tasks": ["age_gender", "gender_race"], "main": "age_gender", "n_train": 100},
            "face_model": {"archs": ["cnn", "resnet"], "widths": [4, 8], "resnet_widths": [4], "headline": "cnn"},
            "face_train": {"notions": ["eo", "dp"], "seeds": 2},
            "curves": {"sizes": [50, 100, 200]},
            "helps": {"methods": ["lagrangian"], "augment": True},
            "data": {"datasets": ["hearts"]},
            "model": {"widths": [16]},
            "train": {"seeds": 1},
        }
    )
    runs = plan_runs(p)
    assert len({r.name for r in runs}) == len(runs)

    def count(**kw):
        return sum(all(getattr(r, k) == v for k, v in kw.items()) for r in runs)

    main = dict(dataset="utk_age_gender", n_train=100, variant="base")
    assert count(**main, arch="cnn", width=8) == 2 * (1 + 3 * 2)  # seeds x (erm + 3 methods x 2 notions)
    assert count(**main, arch="cnn", width=4) == 2 * (1 + 3)  # the claim's notion only below the largest
    assert count(**main, arch="resnet", width=4) == 2 * (1 + 3)
    assert count(dataset="utk_gender_race") == 2 * (1 + 3) and count(dataset="utk_gender_race", width=8) == 8
    assert count(n_train=50) == count(n_train=200) == 2 * 4
    assert count(variant="wd") == count(variant="aug") == 2 and count(variant="wd", method="lagrangian") == 2
    assert count(dataset="hearts", arch="mlp", width=16) == 4
    wd = run_setup(p, next(r for r in runs if r.variant == "wd"))
    aug = run_setup(p, next(r for r in runs if r.variant == "aug"))
    base = run_setup(p, runs[0])
    assert wd.cfg.weight_decay == p.helps.weight_decay and not wd.augment and aug.augment
    assert base.cfg.weight_decay == 0 and base.channel_ratio == 1.0 and base.cfg.epochs == p.face_train.epochs
    tab = run_setup(p, next(r for r in runs if r.dataset == "hearts"))
    assert tab.cfg == p.train and tab.arch == "mlp"
    # the ResNet as the headline net: every notion, the other task, the size axis and the remedies move to it
    p = p.model_copy(update={"face_model": p.face_model.model_copy(update={"headline": "resnet"})})
    runs = plan_runs(p)
    assert count(**main, arch="resnet", width=4) == 2 * (1 + 3 * 2) and count(**main, arch="cnn", width=8) == 2 * 4
    assert count(dataset="utk_gender_race", arch="resnet") == 8 and count(n_train=50, arch="resnet") == 8
    assert count(variant="wd", arch="resnet") == count(variant="aug", arch="resnet") == 2


def test_summarize_gives_the_claims_three_conditions_and_a_seed_interval():
    def hist(tr, te, fq, epoch=10):
        return [
            {
                "epoch": epoch,
                "train_acc": 1.0,
                "test_acc": 0.8,
                "train_gap_eo": tr,
                "test_gap_eo": te,
                "test_floor_eo": fq / 2,
                "test_floorq_eo": fq,
            }
        ]

    runs = [
        (RunSpec("h", "lagrangian", "eo", 8, 0), hist(0.0, 0.37, 0.05)),
        (RunSpec("h", "penalty", "eo", 8, 0), hist(0.02, 0.03, 0.05)),
        (RunSpec("h", "lagrangian", "eo", 8, 1), hist(0.01, 0.2, 0.05)),
        (RunSpec("h", "penalty", "eo", 8, 1), hist(0.03, 0.2, 0.05)),
    ]
    rows = results_frame(runs)
    s = summarize(rows, "eo", 0.05, resolution=0.01)
    assert s["runs"] == 4 and s["seeds"] == 2 and s["train_gap"] == pytest.approx(0.015)
    assert s["test_gap"] == pytest.approx(0.2) and s["ratio"] == pytest.approx(0.2 / 0.015)
    assert s["test_gap_lo"] == pytest.approx(0.2) and s["test_gap_hi"] == pytest.approx(0.2)  # seed means 0.2, 0.2
    assert s["meets_constraint"] and s["above_floor"] and s["holds"] and s["status"] == "holds"
    assert s["runs_holding"] == 3  # penalty seed 0 alone: test gap 0.03 < 2 x 0.02 and inside the floor
    within = summarize(results_frame([(spec, hist(0.0, 0.04, 0.05)) for spec, _ in runs]), "eo", 0.05, 0.01)
    assert within["ratio"] > 2 and within["meets_constraint"] and not within["holds"]
    assert within["status"].startswith("inconclusive")  # a test gap inside the noise floor never holds
    unmet = summarize(results_frame([(spec, hist(0.1, 0.4, 0.05)) for spec, _ in runs]), "eo", 0.05, 0.01)
    assert unmet["status"] == "constraint not met on train" and not unmet["holds"]
    assert summarize(rows.iloc[:0], "eo", 0.05, 0.01)["status"] == "no runs"
    # the conditions exactly: test >= 2 x train (not against the resolution), test > floor quantile
    zero = summarize(results_frame([(spec, hist(0.0, 0.06, 0.05)) for spec, _ in runs]), "eo", 0.05, 0.04)
    assert zero["overfits"] and zero["holds"] and zero["ratio"] == pytest.approx(0.06 / 0.04)
    short = summarize(results_frame([(spec, hist(0.04, 0.07, 0.05)) for spec, _ in runs]), "eo", 0.05, 0.01)
    assert short["above_floor"] and short["meets_constraint"] and not short["overfits"] and not short["holds"]
    assert short["status"].startswith("test gap above noise but below")
    both = summarize(results_frame([(spec, hist(0.1, 0.04, 0.05)) for spec, _ in runs]), "eo", 0.05, 0.01)
    assert both["status"].startswith("inconclusive") and not both["holds"]  # within noise wins over the rest
    mean, lo, hi = seed_interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and (lo, hi) == pytest.approx((2 - 4.3027 / np.sqrt(3), 2 + 4.3027 / np.sqrt(3)), abs=1e-3)
    assert seed_interval([1.0]) == (1.0, None, None)
    y, grp = np.array([1, 1, 0, 0, 0, 1]), np.array([0, 1, 0, 1, 1, 1])
    assert gap_resolution(grp, y, "eopp") == 1.0 and gap_resolution(grp, y, "dp") == pytest.approx(1 / 2)


def test_early_stopping_picks_the_smallest_held_out_gap_among_accurate_epochs():
    hist = [
        {"epoch": e, "val_acc": a, "val_gap_eo": g, "train_gap_eo": 0.0, "test_gap_eo": t}
        for e, a, g, t in [(2, 0.70, 0.01, 0.02), (5, 0.80, 0.08, 0.09), (10, 0.81, 0.05, 0.06), (20, 0.82, 0.10, 0.12)]
    ]
    df = results_frame([(RunSpec("h", "lagrangian", "eo", 8, 0), hist)])
    picked = early_stopped(df, "eo", 0.02)  # epochs within 0.02 of the best held-out accuracy 0.82: 10, 20
    assert list(picked.epoch) == [10] and float(picked.test_gap_eo.iloc[0]) == 0.06
    assert list(early_stopped(df, "eo", 0.2).epoch) == [2]


def test_bad_params_name_the_key():
    with pytest.raises(ParamsError, match="fairness.train: .*eval_epochs"):
        validate_section("fairness", {"train": {"epochs": 10, "eval_epochs": [20]}})
    with pytest.raises(ParamsError, match="faces.main 'gender_race' must be one of faces.tasks"):
        validate_section("fairness", {"faces": {"tasks": ["age_gender"], "main": "gender_race"}})
    with pytest.raises(ParamsError, match="race_s0 and race_s1 must be disjoint"):
        validate_section("fairness", {"faces": {"race_s0": [0], "race_s1": [0, 1]}})
    with pytest.raises(ParamsError, match="claim_notion 'eopp' must be one of face_train.notions"):
        validate_section("fairness", {"eval": {"claim_notion": "eopp"}})
    with pytest.raises(ParamsError, match="unknown key"):
        validate_section("fairness", {"train": {"lamda": 1}})


def test_train_task_resumes_a_finished_run_from_its_checkpoint(tmp_path, monkeypatch):
    import logging

    import tasks.fairness as tf
    from tenfold.core.checkpoints import Checkpoint, CheckpointError
    from tenfold.studies.fairness.study import RunSetup

    monkeypatch.setattr(tf, "get_run_logger", lambda: logging.getLogger("test"))
    data, spec = _biased(100), RunSpec("toy", "penalty", "dp", 4, 0)
    setup, path = RunSetup(_cfg(epochs=3, eval_epochs=[3]), 1, "mlp", 1.0, False), tmp_path / "run.pt"
    cpu = torch.device("cpu")
    first = tf.train_fair_net.fn(data, spec, setup, cpu, 0, 0, 0.95, Checkpoint(path, "fp1"), keep_model=True)
    fresh = tf.train_fair_net.fn(data, spec, setup, cpu, 0, 0, 0.95, Checkpoint(None, "fp1"), keep_model=True)
    assert fresh["history"] == first["history"]  # the same seed trains the same net
    assert all(torch.equal(fresh["state"][k], v) for k, v in first["state"].items())
    monkeypatch.setattr(tf, "train_fair", lambda *a, **k: pytest.fail("a finished run must not be retrained"))
    again = tf.train_fair_net.fn(data, spec, setup, cpu, 0, 0, 0.95, Checkpoint(path, "fp1"), keep_model=True)
    assert again["history"] == first["history"]
    assert all(torch.equal(again["state"][k], v) for k, v in first["state"].items())
    with pytest.raises(BaseException, match="must not be retrained"):  # a changed fingerprint retrains
        tf.train_fair_net.fn(data, spec, setup, cpu, 0, 0, 0.95, Checkpoint(path, "fp2"))
    path.write_bytes(b"truncated")
    with pytest.raises(CheckpointError, match="run.pt"):  # a corrupt file is never silently discarded
        tf.train_fair_net.fn(data, spec, setup, cpu, 0, 0, 0.95, Checkpoint(path, "fp1"))


def test_image_tasks_get_a_small_cnn_whose_channels_follow_the_width():
    from tenfold.studies.fairness.models import MLP, SmallCNN, count_parameters

    cnn = seeded(0, lambda: make_model((1, 28, 28), 256, 3, "cnn", 1 / 16))
    assert isinstance(cnn, SmallCNN) and cnn.channels == 16
    assert [m.stride for m in cnn.features if isinstance(m, torch.nn.Conv2d)] == [(2, 2)] * 3
    assert cnn(torch.zeros(5, 1, 28, 28)).shape == (5,)
    small = make_model((1, 28, 28), 16, 3, "cnn", 1 / 16)
    assert small.channels == 2 and count_parameters(small) < count_parameters(cnn)
    assert make_model((3, 32, 32), 32, 3, "cnn", 1.0).channels == 32  # faces: channels = width
    assert isinstance(make_model((1, 28, 28), 64, 3, "mlp"), MLP)
    assert isinstance(make_model((12,), 64, 3, "cnn"), MLP)  # tabular data keep the MLP
    assert isinstance(make_model((12,), 64, 3, "resnet"), MLP)
    with pytest.raises(ValueError, match="image_arch"):
        make_model((12,), 64, 3, "transformer")


def test_resnet_style_net_has_residual_stages_and_trains_with_a_held_out_split():
    from tenfold.studies.fairness.models import BasicBlock, ResNetSmall, count_parameters

    net = seeded(0, lambda: make_model((3, 32, 32), 8, 3, "resnet"))
    assert isinstance(net, ResNetSmall) and count_parameters(net) == 19657
    assert sum(isinstance(m, BasicBlock) for m in net.modules()) == 3 and net(torch.zeros(4, 3, 32, 32)).shape == (4,)
    rng = np.random.default_rng(0)
    x, y, s = rng.standard_normal((90, 3, 8, 8)).astype(np.float32), rng.integers(0, 2, 90), rng.integers(0, 2, 90)
    data = FairData(
        "img",
        x[:50],
        y[:50],
        s[:50],
        x[50:70],
        y[50:70],
        s[50:70],
        "generated",
        "y",
        "s",
        x_val=x[70:],
        y_val=y[70:],
        s_val=s[70:],
    )
    torch.set_num_threads(1)
    hist = train_fair(
        seeded(0, lambda: make_model((3, 8, 8), 4, 3, "resnet")),
        data,
        "lagrangian",
        "eo",
        _cfg(epochs=2, eval_epochs=[1, 2], batch_size=25),
        torch.device("cpu"),
        0,
        10,
        augment=True,
    )
    assert [h["epoch"] for h in hist] == [1, 2]
    assert all({"val_acc", "val_gap_eo", "test_floor_eo", "test_floorq_eo", "train_pos"} <= set(h) for h in hist)


def test_augmentation_flips_and_shifts_reproducibly():
    from tenfold.core.seeds import generator

    x = torch.arange(2 * 1 * 6 * 6, dtype=torch.float32).view(2, 1, 6, 6)
    a, b = augment_batch(x, generator(3)), augment_batch(x, generator(3))
    assert torch.equal(a, b) and a.shape == x.shape and not torch.equal(a, x)
    outs = {augment_batch(x, generator(k))[0, 0].sum().item() for k in range(20)}
    assert len(outs) > 3  # different shifts / flips for different draws
    with pytest.raises(ValueError, match="augmentation needs image data"):
        train_fair(
            make_model((2,), 4, 1),
            _biased(40),
            "erm",
            "dp",
            _cfg(epochs=1, eval_epochs=[1]),
            torch.device("cpu"),
            0,
            augment=True,
        )


def test_cnn_fits_a_group_dependent_image_task_and_the_penalty_shrinks_the_gap():
    """Images whose label is a bright left half, with the group (a bright top row) correlated with the label."""
    rng = np.random.default_rng(0)
    n = 256
    s = rng.integers(0, 2, n)
    y = (rng.random(n) < np.where(s == 1, 0.8, 0.2)).astype(np.int64)
    x = 0.3 * rng.standard_normal((n, 1, 12, 12)).astype(np.float32)
    x[:, 0, :, :6] += y[:, None, None] * 1.0
    x[:, 0, 0, :] += s[:, None] * 1.0
    h = n // 2
    data = FairData("img", x[:h], y[:h], s[:h], x[h:], y[h:], s[h:], "generated", "y", "s")
    torch.set_num_threads(1)
    cfg = _cfg(epochs=40, eval_epochs=[40], batch_size=64, lr=0.01)
    out = {
        m: train_fair(
            seeded(0, lambda: make_model((1, 12, 12), 128, 2, "cnn", 1 / 16)),
            data,
            m,
            "dp",
            cfg,
            torch.device("cpu"),
            0,
        )[-1]
        for m in ("erm", "penalty")
    }
    assert out["erm"]["train_acc"] > 0.9
    assert out["penalty"]["train_gap_dp"] < out["erm"]["train_gap_dp"] / 2


def test_cpu_seconds_are_summed_by_part():
    from tenfold.studies.fairness.study import cpu_by_part, part_of

    p = FairnessParams.model_validate(
        {
            "faces": {"tasks": ["age_gender", "gender_race"], "n_train": 100},
            "face_model": {"archs": ["cnn", "resnet"], "widths": [4], "resnet_widths": [4]},
            "face_train": {"seeds": 1},
            "curves": {"sizes": [50]},
            "data": {"datasets": ["hearts"]},
        }
    )
    runs = plan_runs(p)
    parts = {part_of(p, r) for r in runs}
    assert parts == {
        "main face task: cnn widths",
        "main face task: resnet widths",
        "other face tasks",
        "training-size axis",
        "what helps: weight decay",
        "what helps: augmentation",
        "secondary datasets: MLP",
    }
    cpu = cpu_by_part(p, runs, [1.0] * len(runs), {("hearts", "eo"): 2.0})
    assert sum(v for k, v in cpu.items() if k != "fairlearn baselines") == len(runs)
    assert cpu["fairlearn baselines"] == 2.0
    resumed = cpu_by_part(p, runs, [None] + [1.0] * (len(runs) - 1), {("hearts", "eo"): None})
    assert resumed[part_of(p, runs[0])] is None and resumed["fairlearn baselines"] is None
