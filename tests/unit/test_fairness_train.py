"""Constrained training, the fairlearn baseline, the experiment grid and the claim's reductions."""

import numpy as np
import pytest
import torch

from tenfold.core.seeds import seeded
from tenfold.registry import ParamsError, validate_section
from tenfold.studies.fairness.data import FairData
from tenfold.studies.fairness.models import Adversary, make_model
from tenfold.studies.fairness.params import FairnessParams, FairnessTrain
from tenfold.studies.fairness.study import RunSpec, gap_resolution, overfit_summary, plan_runs, results_frame
from tenfold.studies.fairness.train import _project_out, fairlearn_baseline, train_fair


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
    assert set(out) == {f"{split}_{k}" for split in ("train", "test") for k in ("acc", "gap_dp", "gap_eo", "gap_eopp")}


def test_plan_runs_full_grid_on_main_and_largest_width_elsewhere():
    p = FairnessParams.model_validate(
        {"data": {"datasets": ["hearts", "german"]}, "model": {"widths": [4, 8]}, "train": {"seeds": 2}}
    )
    runs = plan_runs(p)
    main = [r for r in runs if r.dataset == "hearts"]
    other = [r for r in runs if r.dataset == "german"]
    assert len(main) == 2 * 2 * (1 + 3 * 3)  # widths x seeds x (erm + 3 methods x 3 notions)
    assert len(other) == 2 * (1 + 3) and {r.width for r in other} == {8} and {r.notion for r in other} == {"none", "eo"}
    assert len({r.name for r in runs}) == len(runs)


def test_overfit_summary_and_resolution():
    hist = lambda tr, te: [
        {"epoch": 10, "train_acc": 1.0, "test_acc": 0.8, "train_gap_eo": tr, "test_gap_eo": te, "test_floor_eo": 0.05}
    ]  # noqa: E731
    df = results_frame(
        [
            (RunSpec("h", "lagrangian", "eo", 8, 0), hist(0.0, 0.3)),
            (RunSpec("h", "penalty", "eo", 8, 0), hist(0.02, 0.1)),
            (RunSpec("h", "erm", "none", 8, 0), hist(0.5, 0.5)),
        ]
    )
    s = overfit_summary(df, "h", "eo", 8, 0.05, resolution=0.01)
    assert s["runs"] == 2 and s["train_gap"] == pytest.approx(0.01) and s["test_gap"] == pytest.approx(0.2)
    assert s["ratio"] == pytest.approx(20.0) and s["meets_constraint"]
    assert overfit_summary(df, "h", "dp", 8, 0.05, 0.01)["ratio"] is None
    y, grp = np.array([1, 1, 0, 0, 0, 1]), np.array([0, 1, 0, 1, 1, 1])
    assert gap_resolution(grp, y, "eopp") == 1.0 and gap_resolution(grp, y, "dp") == pytest.approx(1 / 2)


def test_bad_params_name_the_key():
    with pytest.raises(ParamsError, match="fairness.train: .*eval_epochs"):
        validate_section("fairness", {"train": {"epochs": 10, "eval_epochs": [20]}})
    with pytest.raises(ParamsError, match="data.main .hearts. must be one of data.datasets"):
        validate_section("fairness", {"data": {"datasets": ["german"], "main": "hearts"}})
    with pytest.raises(ParamsError, match="unknown key"):
        validate_section("fairness", {"train": {"lamda": 1}})


def test_train_task_resumes_a_finished_run_from_its_checkpoint(tmp_path, monkeypatch):
    import logging

    import tasks.fairness as tf
    from tenfold.core.checkpoints import Checkpoint, CheckpointError

    monkeypatch.setattr(tf, "get_run_logger", lambda: logging.getLogger("test"))
    data, spec = _biased(100), RunSpec("toy", "penalty", "dp", 4, 0)
    cfg, path = _cfg(epochs=3, eval_epochs=[3]), tmp_path / "run.pt"
    first = tf.train_fair_net.fn(
        data, spec, 1, cfg, torch.device("cpu"), 0, 0, Checkpoint(path, "fp1"), keep_model=True
    )
    fresh = tf.train_fair_net.fn(
        data, spec, 1, cfg, torch.device("cpu"), 0, 0, Checkpoint(None, "fp1"), keep_model=True
    )
    assert fresh["history"] == first["history"]  # the same seed trains the same net
    assert all(torch.equal(fresh["state"][k], v) for k, v in first["state"].items())
    monkeypatch.setattr(tf, "train_fair", lambda *a, **k: pytest.fail("a finished run must not be retrained"))
    again = tf.train_fair_net.fn(
        data, spec, 1, cfg, torch.device("cpu"), 0, 0, Checkpoint(path, "fp1"), keep_model=True
    )
    assert again["history"] == first["history"]
    assert all(torch.equal(again["state"][k], v) for k, v in first["state"].items())
    with pytest.raises(BaseException, match="must not be retrained"):  # a changed fingerprint retrains
        tf.train_fair_net.fn(data, spec, 1, cfg, torch.device("cpu"), 0, 0, Checkpoint(path, "fp2"))
    path.write_bytes(b"truncated")
    with pytest.raises(CheckpointError, match="run.pt"):  # a corrupt file is never silently discarded
        tf.train_fair_net.fn(data, spec, 1, cfg, torch.device("cpu"), 0, 0, Checkpoint(path, "fp1"))


def test_image_tasks_get_a_small_cnn_whose_channels_follow_the_width():
    from tenfold.studies.fairness.models import MLP, SmallCNN, count_parameters

    cnn = seeded(0, lambda: make_model((1, 28, 28), 256, 3, "cnn", 1 / 16))
    assert isinstance(cnn, SmallCNN) and cnn.channels == 16
    assert [m.stride for m in cnn.features if isinstance(m, torch.nn.Conv2d)] == [(2, 2)] * 3
    assert cnn(torch.zeros(5, 1, 28, 28)).shape == (5,)
    small = make_model((1, 28, 28), 16, 3, "cnn", 1 / 16)
    assert small.channels == 2 and count_parameters(small) < count_parameters(cnn)
    assert isinstance(make_model((1, 28, 28), 64, 3, "mlp"), MLP)
    assert isinstance(make_model((12,), 64, 3, "cnn"), MLP)  # tabular data keep the MLP
    with pytest.raises(ValueError, match="image_arch"):
        make_model((12,), 64, 3, "resnet")


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
