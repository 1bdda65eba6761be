"""The augmentation study's claims, headline, table and figure from given cell means (no training, no Prefect,
no MLflow): `holds` is computed, never written."""

import pytest

from tenfold.studies.augmentation.outcome import COLUMNS, Measured, build, claims, dp_label, write_figures
from tenfold.studies.augmentation.params import AugmentationParams

P = AugmentationParams(
    attacks=["badnets"], backdoor="badnets", defenses=["none", "cutmix", "mixup"], dp_noise=[0.5, 1.5]
)
LABELS = ["none", "cutmix", "mixup", dp_label(0.5), dp_label(1.5)]


def _s(succ, acc, **kw):
    return {"success": succ, "success_lo": max(0.0, succ - 0.03), "clean_acc": acc, "trials": 2, **kw}


CONTROLS = [{"hits": 10, "n_triggered": 1000}]  # the clean network sends 1% of the triggered inputs there
CONTROL = {"success": 0.01, "success_lo": 0.005, "success_hi": 0.018, "n": 1000}


def _summary(cutmix=(0.2, 0.94), dp_low=(0.6, 0.9), dp_high=(0.1, 0.6)):
    return {
        ("badnets", "none"): _s(0.8, 0.95),
        ("badnets", "cutmix"): _s(*cutmix),
        ("badnets", "mixup"): _s(0.5, 0.95),
        ("badnets", dp_label(0.5)): _s(*dp_low, **{"defense.epsilon": 17.94}),
        ("badnets", dp_label(1.5)): _s(*dp_high, **{"defense.epsilon": 1.4149}),
    }


def _measured(summary):
    return Measured(
        [{"attack": a, "defense": d} for a, d in summary], summary, LABELS, 0.93, "digits", 300, 2, 1, 20, CONTROLS
    )


def test_cutmix_claim_needs_both_the_cut_and_the_accuracy():
    ok = claims(P, _summary(cutmix=(0.2, 0.945)), LABELS, CONTROL)[0][0]
    assert ok.holds and ok.measured == pytest.approx(0.75) and ok.note == "clean-accuracy drop +0.0050"
    assert not claims(P, _summary(cutmix=(0.2, 0.90)), LABELS, CONTROL)[0][0].holds  # cut enough, 5 points lost
    assert claims(P, _summary(cutmix=(0.2, 0.94)), LABELS, CONTROL)[0][0].holds  # exactly 1 point: float 0.0100...01
    assert not claims(P, _summary(cutmix=(0.2, 0.9399)), LABELS, CONTROL)[0][0].holds  # 1.01 points
    weak = claims(P, _summary(cutmix=(0.6, 0.95)), LABELS, CONTROL)[0][0]
    assert not weak.holds and weak.measured == pytest.approx(0.25)  # no accuracy cost, too small a cut


def test_cutmix_claim_is_not_measurable_without_a_working_backdoor():
    s = _summary()
    s[("badnets", "none")] = _s(0.0, 0.95)
    c = claims(P, s, LABELS, CONTROL)[0][0]
    assert c.measured is None and not c.holds


def test_neither_claim_is_tested_when_the_backdoor_did_not_implant():
    """A defense is not credited with cutting a backdoor the undefended victim never learned: the claims are judged
    only when the undefended success is above what the clean network already does with the triggered inputs (the
    CPU default's clean-label patch reached 0.025 undefended, and dpsgd_cost 'held' on that)."""
    s = _summary(cutmix=(0.1, 0.95), dp_low=(0.1, 0.9))
    s[("badnets", "none")] = _s(0.4, 0.95)  # cut 0.75 at no accuracy cost, DP costs 5 points: both would hold
    (cut, cost), notes = claims(P, s, LABELS, CONTROL)
    assert cut.holds and cost.holds and any(n.startswith("The badnets backdoor implanted") for n in notes)
    salient = {"success": 0.36, "success_lo": 0.33, "success_hi": 0.39, "n": 1000}  # the patch alone does as much
    (cut, cost), notes = claims(P, s, LABELS, salient)
    assert cut.measured == pytest.approx(0.75) and not cut.holds and "did not implant" in cut.note
    assert cost.measured == pytest.approx(0.05) and not cost.holds and "did not implant" in cost.note
    assert any(n.startswith("Not tested: the badnets backdoor did not implant") and "0.360" in n for n in notes)
    assert not any(c.holds for c in claims(P, s, LABELS)[0])  # no control measured: nothing is judged


def test_the_cut_must_persist_at_longer_training():
    """A cut that vanishes when the victims train longer delays the backdoor; it does not remove it (measured: BadNets
    5% on the CPU victims, CutMix 0.99 -> 0.54 at 20 epochs, 1.0 -> 1.0 at 40)."""
    s = _summary(cutmix=(0.2, 0.945))  # main (20 epochs): cut 0.75 at half a point
    p = P.model_copy(update={"epoch_curve": [10, 40]})
    s[("badnets", "none@10ep")], s[("badnets", "cutmix@10ep")] = _s(0.2, 0.8), _s(0.25, 0.75)
    s[("badnets", "none@40ep")], s[("badnets", "cutmix@40ep")] = _s(1.0, 0.96), _s(0.3, 0.96)
    (cut, _), notes = claims(p, s, LABELS, CONTROL, main_epochs=20)
    assert cut.holds  # at 40 epochs the cut is 0.70: it persists (10 epochs, shorter, does not count)
    assert any(
        n.startswith("Training length (victim epochs; badnets undefended -> CutMix): 10: success 0.200")
        and "20 (main): success 0.800 -> 0.200 (cut 0.75)" in n
        and "40: success 1.000 -> 0.300" in n
        for n in notes
    )
    s[("badnets", "cutmix@40ep")] = _s(1.0, 0.96)
    (cut, _), _ = claims(p, s, LABELS, CONTROL, main_epochs=20)
    assert (
        cut.measured == pytest.approx(0.75)
        and not cut.holds
        and "gone at longer training: 40 epochs cut 0.00" in cut.note
    )


def test_curve_plan_leaves_out_the_main_length_and_starts_with_the_longest():
    from tenfold.studies.augmentation.plan import curve

    p = P.model_copy(update={"epoch_curve": [10, 40, 20]})
    assert curve(p, 20) == [
        ("none@40ep", "none", 40),
        ("cutmix@40ep", "cutmix", 40),
        ("none@10ep", "none", 10),
        ("cutmix@10ep", "cutmix", 10),
    ]


def test_control_rate_pools_setups_with_a_wilson_interval():
    from tenfold.components.attacks.metrics import control_rate

    c = control_rate([{"hits": 3, "n_triggered": 100}, {"hits": 7, "n_triggered": 100}])
    assert c["success"] == pytest.approx(0.05) and c["n"] == 200 and c["success_lo"] < 0.05 < c["success_hi"]
    assert control_rate([{"hits": 0, "n_triggered": 0}]) is None


def test_dpsgd_cost_uses_smallest_noise_that_defends_as_well_as_cutmix():
    found, notes = claims(P, _summary(), LABELS, CONTROL)
    assert found[1].holds and found[1].measured == pytest.approx(0.35 - 0.01)
    assert any("dpsgd(sigma=1.5)" in n for n in notes) and any(n.startswith("mixup vs badnets") for n in notes)
    found, notes = claims(P, _summary(dp_low=(0.15, 0.9)), LABELS, CONTROL)  # sigma 0.5 defends too: it is chosen
    assert found[1].measured == pytest.approx(0.05 - 0.01) and any("dpsgd(sigma=0.5)" in n for n in notes)
    found, notes = claims(P, _summary(dp_high=(0.3, 0.6)), LABELS, CONTROL)  # no level defends as well
    assert found[1].measured is None and not found[1].holds
    assert any("not measurable" in n for n in notes)


def test_build_headline_table_and_acceptance():
    out = build(P, _measured(_summary()), accept_min_clean_acc=0.9)
    assert [c.id for c in out.claims] == ["cutmix_backdoor_cut", "dpsgd_cost"] and out.passed
    assert out.headline["cutmix_backdoor_cut"] == pytest.approx(0.75)
    assert out.headline["backdoor_none_success"] == 0.8 and out.headline["backdoor_cutmix_acc"] == 0.94
    rows = {(r[0], r[1]): dict(zip(out.tables["defenses"]["columns"], r)) for r in out.tables["defenses"]["rows"]}
    assert rows[("badnets", "dpsgd(sigma=0.5)")]["epsilon"] == 17.94 and rows[("badnets", "none")]["epsilon"] is None
    assert out.details["clean_acc"] == 0.93 and len(out.details["cells"]) == 5
    assert out.claims[0].holds  # cut 0.75 at exactly 1 point lost (0.95 - 0.94): within 1 point
    assert out.notes[0].startswith("Reproduced at this scale: `cutmix_backdoor_cut` measured 0.750")
    assert out.notes[1].startswith("Reproduced at this scale: `dpsgd_cost`")
    assert any("digits (300 training images)" in n and "2 setups" in n for n in out.notes)
    assert not any("gradient-matching" in n for n in out.notes)  # none runs: its target count is not mentioned
    gm = {**_summary(), ("gradient_matching", "none"): _s(0.0, 0.95)}
    assert any("1 target(s) per gradient-matching attack" in n for n in build(P, _measured(gm), 0.9).notes)
    assert not build(P, _measured(_summary()), accept_min_clean_acc=0.95).passed
    assert out.metrics()["claims"]["dpsgd_cost"]["holds"] is True


def test_figure_is_written_and_listed(tmp_path):
    m = _measured(_summary())
    out = build(P, m, 0.9)
    write_figures(out, P, m, tmp_path)
    assert (tmp_path / "acc_vs_success.csv").read_text().splitlines()[0] == ",".join(COLUMNS)
    assert [f["path"] for f in out.figures] == ["plots/augmentation/acc_vs_success.png"]
    assert (tmp_path / "acc_vs_success.png").exists()


def test_dpsgd_victims_that_failed_training_are_named_not_called_undefended():
    """A DP-SGD level whose every victim fell below the minimum clean accuracy has no success rate: the note says it
    failed to train (the CPU default's sigma 1 on 3,000 images), not that it defended worse than CutMix."""
    s = _summary()
    s[("badnets", dp_label(0.5))] = {"trials": 1, "failed": 1}
    s[("badnets", dp_label(1.5))] = {"trials": 1, "failed": 1}
    found, notes = claims(P, s, LABELS, CONTROL)
    assert found[1].measured is None and not found[1].holds
    note = next(n for n in notes if "DP-SGD" in n)
    assert note.startswith("DP-SGD failed to train at dpsgd(sigma=0.5), dpsgd(sigma=1.5)") and "not measurable" in note
    assert "did not defend" not in note
    s[("badnets", dp_label(1.5))] = _s(0.3, 0.6)  # one level trained but defends worse than CutMix's 0.2
    note = next(n for n in claims(P, s, LABELS, CONTROL)[1] if "DP-SGD" in n)
    assert "failed to train at dpsgd(sigma=0.5)" in note and "at dpsgd(sigma=1.5) it did not defend" in note
