"""The lowkey study's claims, headline, tables and notes from given identification rates (no training, no
filtering, no Prefect, no MLflow)."""

import numpy as np
import pytest

from tenfold.registry import validate_section
from tenfold.studies.lowkey.evaluate import SWEEP_COLUMNS, Assemble, sweep_positions
from tenfold.studies.lowkey.outcome import Measured, build, operating_points, setting_label, write_figures

P = validate_section("lowkey", {})
NAMES = ["ms1m", "ft_arcface", "ft_cosface", "casia", "scratch_arcface", "scratch_cosface", "dlib"]
ROLES = {"ms1m": "attack", "ft_arcface": "attack", "ft_cosface": "attack", "casia": "held-out", "dlib": "judge"}


def _row(setting, steps, face_ssim, dlib1, heldout1, probes=80, attack="ms1m+ft_arcface"):
    return [
        setting,
        steps,
        0.0025,
        0.05,
        0.0,
        0.0,
        probes,
        face_ssim,
        face_ssim + 0.05,
        dlib1,
        dlib1 + 0.1,
        heldout1,
        0.95,
        attack,
    ]


def measured(dlib_first=0.05, ssim_first=0.87, dlib_subtle=0.30, ssim_subtle=0.94, heldout=0.02) -> Measured:
    clean = {n: {"auc": 0.99, "ranks": {1: 0.97, 10: 1.0}} for n in NAMES}
    clean["dlib"]["detected"] = 1.0
    first = {n: {"ranks": {1: 0.0, 10: 0.1}} for n in NAMES}
    subtle = {n: {"ranks": {1: 0.2, 10: 0.5}} for n in NAMES}
    first["dlib"] = {"ranks": {1: dlib_first, 10: 0.3}, "detected": 0.9}
    subtle["dlib"] = {"ranks": {1: dlib_subtle, 10: 0.6}, "detected": 1.0}
    first["casia"]["ranks"][1] = heldout
    q = lambda s: {
        "face_ssim": np.array([s - 0.01, s + 0.01]),
        "ssim": np.array([0.95, 0.96]),  # noqa: E731
        "psnr": np.array([35.0, np.inf]),
    }
    rows = [
        _row("default", 20, ssim_subtle, dlib_subtle, 0.1),
        _row("default", 50, ssim_first, dlib_first, heldout),
        _row("lr0.005 c0.05", 50, 0.7, 0.0, 0.0, probes=40),
        _row("lr0.0025 c1 by ft_arcface", 10, 0.9, 0.4, 0.3, probes=40, attack="ft_arcface"),
        _row("lr0.0025 c1 by ft_arcface", 60, 0.8, 0.1, 0.1, probes=40, attack="ft_arcface"),
        _row("lr0.0025 c1 by scratch_arcface", 10, 0.91, 0.9, 0.8, probes=40, attack="scratch_arcface"),
    ]
    return Measured(
        counts={
            "eval_identities": 40,
            "distractors": 60,
            "gallery": 100,
            "probes": 80,
            "auc_photos": 240,
            "train_identities": 198,
            "train_photos": 3700,
        },
        registry=[
            {"name": n, "role": ROLES.get(n, "surrogate"), "input": "112x112", "normalisation": "x", "source": "s"}
            for n in NAMES
        ],
        clean=clean,
        filtered={"first": first, "subtle": subtle},
        quality={"first": q(ssim_first), "subtle": q(ssim_subtle)},
        mtcnn_found={"first": 1.0, "subtle": 1.0},
        sweep_rows=rows,
        att={
            "rows": [[n, ROLES.get(n, "surrogate"), 1.0, 0.1, 0.5] for n in NAMES],
            "quality": {},
            "probes": 40,
            "subjects": 40,
        },
        training={
            "ft_arcface": {
                "head": "arcface",
                "init": "ms1m",
                "history": [{"epoch": 2, "loss": 3.0, "train_acc": 0.8}],
                "cpu_seconds": 100.0,
                "train_photos": 3700,
                "train_identities": 198,
            },
            "scratch_arcface": {
                "head": "arcface",
                "init": "scratch",
                "history": [{"epoch": 1, "loss": 9.0, "train_acc": 0.1}, {"epoch": 2, "loss": 8.0, "train_acc": 0.2}],
                "cpu_seconds": 200.0,
                "train_photos": 3700,
                "train_identities": 198,
            },
        },
        attack_cpu_seconds=800.0,
        n_probes=80,
        examples=tuple([np.zeros((2, 8, 8, 3), np.uint8)] * 3 + [np.ones(2), np.ones(2)]),
    )


def test_claims_hold_at_both_operating_points():
    out = build(P, measured())
    c = {x.id: x for x in out.claims}
    assert set(c) == {"dlib_rank1_filtered", "lowkey_ssim", "dlib_rank1_subtle", "surrogate_rank1_filtered"}
    assert all(x.holds for x in out.claims)
    assert c["dlib_rank1_filtered"].measured == 0.05 and "face SSIM 0.870" in c["dlib_rank1_filtered"].note
    assert c["lowkey_ssim"].measured == pytest.approx(0.87)
    assert out.passed and out.headline["seconds_cpu_per_probe"] == 10.0 and len(out.headline) <= 20
    assert out.headline["psnr_mean"] == pytest.approx(67.5)  # an unchanged photo counts as 100 dB, not infinity


def test_rank_claims_need_their_ssim_bound_too():
    """A low dlib rank-1 bought with a visible filter does not hold: the SSIM bound is part of the claim."""
    out = build(P, measured(dlib_first=0.02, ssim_first=0.80, dlib_subtle=0.2, ssim_subtle=0.92, heldout=0.5))
    c = {x.id: x for x in out.claims}
    assert not c["dlib_rank1_filtered"].holds and not c["lowkey_ssim"].holds
    assert not c["dlib_rank1_subtle"].holds and not c["surrogate_rank1_filtered"].holds
    assert c["dlib_rank1_subtle"].measured == 0.2
    assert out.notes[0].startswith("Not reached: `dlib_rank1_filtered` measured 0.020")


def test_operating_points_pick_the_lowest_dlib_rank1_above_each_bound():
    rows = [
        _row("a", 10, 0.95, 0.5, 0.3),
        _row("a", 20, 0.93, 0.3, 0.2),
        _row("a", 50, 0.86, 0.06, 0.0),
        _row("b", 50, 0.6, 0.0, 0.0),
    ]
    pts = operating_points(rows, [0.85, 0.93, 0.99])
    assert pts["ssim>=0.85"]["n_iters"] == 50 and pts["ssim>=0.85"]["setting"] == "a"
    assert pts["ssim>=0.93"]["dlib_rank1"] == 0.3 and pts["ssim>=0.99"] is None
    assert setting_label(P.attack) == "lr0.0025 c1 l2"
    cfg = P.attack.model_copy(update={"c_sim": 0.05, "eot_shift": 0.02, "step": "sign"})
    assert setting_label(cfg) == "lr0.0025 c0.05 sign eot0.02/0"
    assert setting_label(P.attack, ["scratch_arcface"]) == "lr0.0025 c1 l2 by scratch_arcface"


def test_fine_tuned_and_scratch_surrogates_are_compared_by_their_single_model_runs():
    """The init table reads each surrogate's clean accuracy and its alone-run at the largest step <= first_iters
    (the 60-step row is past the first operating point); the note puts the two inits side by side."""
    out = build(P, measured())
    t = out.tables["init"]
    rows = {r[0]: dict(zip(t["columns"], r)) for r in t["rows"]}
    assert list(rows) == ["ms1m", "ft_arcface", "scratch_arcface"]
    assert rows["ms1m"]["init"] == "MS1M (pretrained)" and rows["ms1m"]["dlib rank-1"] is None
    ft, sc = rows["ft_arcface"], rows["scratch_arcface"]
    assert (ft["alone: steps"], ft["dlib rank-1"], ft["held-out rank-1"], ft["face SSIM"]) == (10, 0.4, 0.3, 0.9)
    assert (sc["init"], sc["epochs"], sc["train CPU s"], sc["dlib rank-1"]) == ("scratch", 2, 200.0, 0.9)
    note = next(n for n in out.notes if n.startswith("Fine-tuned vs from scratch"))
    assert (
        "ft_arcface (1 epoch(s) from the MS1M weights; clean AUC 0.990, rank-1 0.970) alone takes dlib to 0.400" in note
    )
    assert (
        "scratch_arcface (2 epoch(s) from scratch on the same photos" in note
        and "dlib to 0.900 and the held-out model to 0.800" in note
    )
    no_alone = measured()
    no_alone.sweep_rows = no_alone.sweep_rows[:3]
    out = build(P, no_alone)
    assert all(r[-1] is None for r in out.tables["init"]["rows"])
    note = next(n for n in out.notes if n.startswith("Fine-tuned vs"))  # clean accuracy still compared
    assert note.count("was not run alone as the attack") == 2


def test_tables_and_figures(tmp_path):
    m = measured()
    out = build(P, m)
    t = out.tables["models"]
    assert t["columns"][:5] == ["model", "role", "clean AUC", "clean rank-1", "clean rank-10"]
    assert [r[0] for r in t["rows"]] == NAMES and t["rows"][-1][1] == "judge"
    assert out.tables["tradeoff"]["columns"] == SWEEP_COLUMNS and len(out.tables["att"]["rows"]) == len(NAMES)
    assert out.details["operating_points"]["ssim>=0.93"]["n_iters"] == 20
    write_figures(out, P, m, tmp_path)
    assert [f["path"] for f in out.figures] == [
        "plots/lowkey/rank1.png",
        "plots/lowkey/tradeoff.png",
        "plots/lowkey/examples.png",
    ]
    assert all((tmp_path / f["path"].split("/")[-1]).exists() for f in out.figures)
    assert (tmp_path / "tradeoff.csv").read_text().splitlines()[0].startswith("setting,n_iters,lr")


def test_assemble_turns_embeddings_into_rank_tables():
    rng = np.random.default_rng(0)
    gid, pid = np.arange(4), np.array([0, 1, 2, 3])
    gal = rng.normal(size=(4, 8))
    good, bad = gal + 0.01 * rng.normal(size=gal.shape), gal[[1, 2, 3, 0]]
    p = validate_section(
        "lowkey",
        {
            "models": {"attack": ["ms1m"]},
            "sweep": {"steps": [1, 2]},
            "attack": {"n_iters": 2},
            "eval": {"first_iters": 2, "subtle_iters": 1},
        },
    )
    entry = lambda e: {
        "emb": {"casia": {"probes": e}},
        "dlib": {"probes": (e, np.ones(4, bool))},  # noqa: E731
        "quality": {"face_ssim": np.ones(4), "ssim": np.ones(4)},
        "mtcnn_found": np.ones(4, bool),
    }
    clean = {
        "emb": {"casia": {"gallery": gal, "probes": good, "auc": np.r_[gal, good]}},
        "dlib": {
            "gallery": (gal, np.ones(4, bool)),
            "probes": (good, np.ones(4, bool)),
            "auc": (np.r_[gal, good], np.ones(8, bool)),
        },
    }
    a = Assemble(p, gid, pid, np.r_[gid, pid], clean, {1: entry(good), 2: entry(bad)}, {"casia": None}, None)
    ct = a.clean_table()
    assert ct["casia"]["auc"] == 1.0 and ct["dlib"]["ranks"][1] == 1.0
    assert a.filtered_table(2)["dlib"]["ranks"][1] == 0.0 and a.filtered_table(1)["casia"]["ranks"][1] == 1.0
    rows = a.sweep_rows("default", p.attack, None, None)
    assert [r[1] for r in rows] == [1, 2] and [r[SWEEP_COLUMNS.index("dlib_rank1")] for r in rows] == [1.0, 0.0]
    assert sweep_positions(3, 2, 1).tolist() == [0, 2, 4] and sweep_positions(2, 2, 5).tolist() == [0, 1, 2, 3]


def test_the_description_names_the_step_rule_that_ran():
    """The report's first line says which steps filtered the photos (it said "signed" for the L2 default)."""
    l2 = build(P, measured()).description
    sign = build(P.model_copy(update={"attack": P.attack.model_copy(update={"step": "sign"})}), measured()).description
    assert f"L2-normalised gradient steps of {P.attack.lr:g}" in l2 and "signed" not in l2
    assert f"signed gradient steps of {P.attack.lr:g}" in sign
