"""The secure_release study's claims, headline, tables and notes from given accuracies (no training, no Prefect,
no MLflow)."""

import math

import pytest

from tenfold.registry import validate_section
from tenfold.studies.secure_release.outcome import (
    Measured,
    build,
    counter_moves,
    counter_sets,
    eps_rows,
    plan,
    share,
    snapshot_name,
    step_rows,
    sweep_name,
    write_figures,
)

P = validate_section(
    "secure_release",
    {
        "methods": ["alignment", "adv_targeted", "random_noise"],
        "victims": {"archs": ["cnn", "mlp"], "min_clean_acc": 0.2},
        "craft": {"steps": 100},
        "drop_target": 0.5,
        "online_tolerance": 5.0,
        "accept_min_surrogate_acc": 0.3,
        "counter": {"adversarial_training": True, "mixup_alpha": 1.0, "augmentations": ["mixup", "cutmix"]},
        "diagnostics": {"step_snapshots": [10, 50], "eps_sweep": [4.0, 16.0]},
    },
)
RELEASES = ["alignment", "adv_targeted", "random_noise", "alignment_online"]


def measured(clean=(0.5, 0.4), alignment=(0.3, 0.25), online=(0.32, 0.25), surrogate=0.5, faces=True) -> Measured:
    acc = {
        ("clean", "cnn"): clean[0],
        ("clean", "mlp"): clean[1],
        ("alignment", "cnn"): alignment[0],
        ("alignment", "mlp"): alignment[1],
        ("adv_targeted", "cnn"): 0.2,
        ("adv_targeted", "mlp"): 0.3,
        ("random_noise", "cnn"): 0.48,
        ("random_noise", "mlp"): 0.39,
        ("alignment_online", "cnn"): online[0],
        ("alignment_online", "mlp"): online[1],
        (snapshot_name(10), "cnn"): 0.49,
        (snapshot_name(50), "cnn"): 0.4,
        (sweep_name("alignment", 4), "cnn"): 0.45,
        (sweep_name("adv_targeted", 4), "cnn"): 0.35,
        (sweep_name("random_noise", 4), "cnn"): 0.5,
        (sweep_name("alignment", 16), "cnn"): 0.2,
        (sweep_name("adv_targeted", 16), "cnn"): 0.1,
        (sweep_name("random_noise", 16), "cnn"): 0.47,
    }
    counters = {
        (s, c): 0.4 for s in ("clean", "alignment", "adv_targeted") for c in ("adversarial_training", "mixup", "cutmix")
    }
    dist = {s: {"psnr": 35.0, "ssim": 0.9, "linf_255": 8.0} for s in RELEASES}
    dist[sweep_name("alignment", 16)] = {"psnr": 30.0, "ssim": 0.8, "linf_255": 16.0}
    info = {"alignment": {"loss_clean": 0.9, "loss_released": 0.4}, "adv_targeted": {}, "random_noise": {}}
    face = (
        {
            "surrogate_acc": 0.5,
            "clean_acc": 0.7,
            "released_acc": 0.2,
            "n_train": 280,
            "n_test": 120,
            "subjects": 40,
            "psnr": 18.0,
            "ssim": 0.5,
            "linf_255": 64.0,
            "eps": 64.0,
        }
        if faces
        else None
    )
    curves = {("clean", "cnn"): [0.2, 0.4, 0.5], ("alignment", "cnn"): [0.2, 0.25, 0.3]}
    return Measured(
        "cifar10",
        "imagefolder:x",
        2000,
        2000,
        surrogate,
        acc,
        counters,
        dist,
        {s: 1.5 for s in RELEASES},
        info,
        55.0,
        face,
        "models/secure_release/release_service.pt",
        10,
        curves,
        {("clean", "cnn"): 10.0},
    )


def test_share_of_above_chance_accuracy_and_online_claim():
    out = build(P, measured())
    c = {x.id: x for x in out.claims}
    # cnn: (0.5 - 0.3) / 0.4 = 0.5; mlp: (0.4 - 0.25) / 0.3 = 0.5
    assert c["release_accuracy_drop"].measured == pytest.approx(0.5) and c["release_accuracy_drop"].holds
    assert "mean absolute drop 17.5 points" in c["release_accuracy_drop"].note
    # drops: batch 17.5, online (18 + 15) / 2 = 16.5 -> batch minus online = 1.0 point
    assert c["online_matches_batch"].measured == pytest.approx(1.0) and c["online_matches_batch"].holds
    assert out.passed
    assert out.headline["alignment_share_removed"] == pytest.approx(0.5)
    assert out.headline["accuracy_drop"] == pytest.approx(17.5)
    assert out.headline["share_removed_adv_targeted"] == pytest.approx(((0.3 / 0.4) + (0.1 / 0.3)) / 2)
    assert out.headline["victims_failed"] == 0 and len(out.headline) <= 20


def test_claim_misses_when_the_release_barely_hurts():
    out = build(P, measured(alignment=(0.45, 0.38), online=(0.5, 0.4), surrogate=0.2))
    c = {x.id: x for x in out.claims}
    assert c["release_accuracy_drop"].measured == pytest.approx((0.05 / 0.4 + 0.02 / 0.3) / 2, abs=1e-6)
    assert not c["release_accuracy_drop"].holds
    assert c["online_matches_batch"].measured == pytest.approx(3.5) and c["online_matches_batch"].holds
    assert not out.passed  # surrogate below accept_min_surrogate_acc
    assert out.notes[0].startswith("Not reproduced at this scale: `release_accuracy_drop`")


def test_failed_victims_are_excluded_never_counted():
    """A victim whose clean-trained copy is under victims.min_clean_acc failed training: the claim is over the
    others; with none left the claim has no measurement and does not hold."""
    out = build(P, measured(clean=(0.5, 0.15), alignment=(0.3, 0.1)))
    c = {x.id: x for x in out.claims}
    assert c["release_accuracy_drop"].measured == pytest.approx(0.5)  # cnn only
    assert "failed training (excluded): mlp" in c["release_accuracy_drop"].note
    assert out.headline["victims_failed"] == 1 and out.details["victims_failed"] == ["mlp"]
    assert out.tables["victims"]["columns"] == ["training set", "cnn", "mlp (failed)"]
    assert any(n.startswith("Failed training") and "mlp 0.150" in n for n in out.notes)
    none = build(P, measured(clean=(0.12, 0.15)))
    c = {x.id: x for x in none.claims}
    assert c["release_accuracy_drop"].measured is None and not c["release_accuracy_drop"].holds
    assert c["online_matches_batch"].measured is None and not c["online_matches_batch"].holds


def test_share_formula_and_interval():
    from tenfold.studies.secure_release.outcome import _interval

    m = measured()
    assert share(m, "adv_targeted", "cnn") == pytest.approx(0.75)
    text = _interval(0.5, 2000)  # an accuracy on 2,000 images with its Wilson interval (the project's one copy)
    lo, hi = (float(v) for v in text.split("[")[1].rstrip("]").split(", "))
    assert text.startswith("0.500 [") and hi - lo == pytest.approx(2 * 1.96 * math.sqrt(0.25 / 2000), abs=2e-3)
    assert _interval(0.0, 100).startswith("0.000 [0.000, ") and _interval(0.3, 0) == "0.300"


def test_tables_notes_and_details():
    out = build(P, measured())
    t = out.tables
    assert [r[0] for r in t["victims"]["rows"]] == ["clean", *RELEASES]  # diagnostic sets stay out
    assert t["victims"]["rows"][0][1].startswith("0.500 [0.4")
    drops = {r[0]: r for r in t["drops"]["rows"]}
    assert drops["alignment"][1:3] == [0.5, 17.5]
    assert t["counter"]["columns"] == ["training set", "adversarial_training", "mixup", "cutmix"]
    assert [r[0] for r in t["counter"]["rows"]] == ["clean", "alignment", "adv_targeted"]
    assert "(40 subjects)" in t["faces"]["title"] and "64/255" in t["faces"]["title"]
    assert t["steps"]["rows"] == [[10, 0.49, 1.0, 0.025], [50, 0.4, 10.0, 0.25], [100, 0.3, 20.0, 0.5]]
    assert t["eps"]["rows"][0] == [0.0, 0.5, 0.5, 0.5] and [r[0] for r in t["eps"]["rows"]] == [0.0, 4.0, 8.0, 16.0]
    assert t["eps"]["rows"][2] == [8.0, 0.3, 0.2, 0.48]
    assert t["epochs"]["rows"][1][:2] == ["alignment", 0.2]
    assert any(n.startswith("Random +-eps noise alone drops the victims by 1.5 points") for n in out.notes)
    assert any("cosine 0.60" in n for n in out.notes)
    assert any("55.0 images/s" in n for n in out.notes)
    assert any(n.startswith("Drop vs crafting steps (cnn): 10 steps 1.0 points") for n in out.notes)
    r = out.results("secure_release", "2103.02683", "t")
    assert r["victim_acc"]["alignment/cnn"] == 0.3 and r["counter_moves"]["clean/mixup"] == 0.4
    assert r["accuracy_drop_points"] == {"cnn": pytest.approx(20.0), "mlp": pytest.approx(15.0)}
    assert r["release_service"].endswith("release_service.pt") and r["faces"]["subjects"] == 40
    assert r["epoch_curves"]["clean/cnn"] == [0.2, 0.4, 0.5]
    assert "faces" not in build(P, measured(faces=False)).tables


def test_epoch_table_shows_only_the_epochs_a_sampled_curve_evaluated():
    m = measured()
    m.curves = {("clean", "cnn"): [0.2, None, None, None, 0.5], ("alignment", "cnn"): [0.1, None, None, None, 0.3]}
    t = build(P, m).tables["epochs"]
    assert t["columns"] == ["training set", "epoch 1", "epoch 5"]
    assert t["rows"] == [["clean", 0.2, 0.5], ["alignment", 0.1, 0.3]]


def test_diagnostics_figure_draws_a_sampled_curve(tmp_path):
    from tenfold.studies.secure_release import plots

    path = plots.diagnostics(tmp_path / "d.png", "cnn", [], {"clean": [0.2, None, 0.4, None, 0.5]}, [], [])
    assert path.exists() and path.stat().st_size > 1000


def test_plan_lists_batch_releases_and_the_eps_sweep():
    names = [(n, m, e, s) for n, m, e, s in plan(P)]
    assert names[:3] == [
        ("alignment", "alignment", 8.0, 100),
        ("adv_targeted", "adv_targeted", 8.0, 100),
        ("random_noise", "random_noise", 8.0, 1),
    ]
    assert ("alignment@eps16", "alignment", 16.0, 100) in names
    assert ("random_noise@eps4", "random_noise", 4.0, 1) in names
    cheap = P.model_copy(
        update={
            "craft": P.craft.model_copy(update={"baseline_steps": 20}),
            "diagnostics": P.diagnostics.model_copy(update={"eps_sweep_steps": 5}),
        }
    )
    got = {n: s for n, _, _, s in plan(cheap)}
    assert got["adv_targeted"] == 20 and got["alignment"] == 100 and got["alignment@eps4"] == 5
    assert got["random_noise@eps16"] == 1


def test_step_and_eps_rows_skip_missing_points():
    m = measured()
    del m.acc[(snapshot_name(10), "cnn")]
    assert [r[0] for r in step_rows(P, m)] == [50, 100]
    del m.acc[(sweep_name("random_noise", 4), "cnn")]
    assert [r[0] for r in eps_rows(P, m)] == [0.0, 8.0, 16.0]


def test_counter_moves_follow_the_params():
    assert counter_moves(P) == ["adversarial_training", "mixup", "cutmix"]
    off = P.model_copy(
        update={"counter": P.counter.model_copy(update={"adversarial_training": False, "mixup_alpha": None})}
    )
    assert counter_moves(off) == []
    assert counter_sets(P) == ["clean", "alignment", "adv_targeted"]
    no_adv = P.model_copy(update={"methods": ["alignment", "random_noise"]})
    assert counter_sets(no_adv) == ["clean", "alignment"]


def test_params_reject_bad_values():
    from tenfold.core.config import ParamsError

    with pytest.raises(ParamsError, match="alignment"):
        validate_section("secure_release", {"methods": ["adv_targeted"]})
    with pytest.raises(ParamsError, match="drop_target"):
        validate_section("secure_release", {"drop_target": 50.0})


def test_figures_are_written_and_listed(tmp_path):
    import torch

    m = measured()
    out = build(P, m)
    x = torch.rand(6, 3, 8, 8)
    write_figures(out, P, m, x, {s: x for s in RELEASES}, tmp_path)
    assert (tmp_path / "victim_accuracy.csv").read_text().splitlines()[0] == "release,cnn,mlp"
    assert [f["path"] for f in out.figures] == [
        "plots/secure_release/victim_accuracy.png",
        "plots/secure_release/examples.png",
        "plots/secure_release/diagnostics.png",
    ]
    assert all((tmp_path / f["path"].split("/")[-1]).exists() for f in out.figures)


def test_diagnostics_file_is_written_even_with_every_diagnostic_off(tmp_path):
    """plots/secure_release/diagnostics.png is a DVC output: a run with the diagnostics off must still write it
    (it once failed the stage after all its training), but the report does not list a blank figure."""
    import torch

    p = P.model_copy(
        update={"diagnostics": P.diagnostics.model_copy(update={"step_snapshots": [], "epoch_curve": False})}
    )
    p = p.model_copy(update={"diagnostics": p.diagnostics.model_copy(update={"eps_sweep": []})})
    m = measured()
    m.curves = {}
    out = build(p, m)
    x = torch.rand(6, 3, 8, 8)
    write_figures(out, p, m, x, {s: x for s in RELEASES}, tmp_path)
    assert (tmp_path / "diagnostics.png").exists()
    assert "plots/secure_release/diagnostics.png" not in [f["path"] for f in out.figures]
