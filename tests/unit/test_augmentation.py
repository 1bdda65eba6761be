"""The augmentation study's claim logic on synthetic cell summaries (holds is computed, never written)."""
from flows.augmentation import _claims, dp_label
from tenfold.studies.augmentation.params import AugmentationParams


def _run(summary):
    p = AugmentationParams()
    labels = ["none", "cutmix", "mixup", dp_label(0.5), dp_label(1.5)]

    def m(a, d, k):
        return summary.get((a, d), {}).get(k)
    return _claims(p, summary, labels, m)


def _s(succ, acc):
    return {"success": succ, "clean_acc": acc}


def test_cutmix_claim_needs_both_the_cut_and_the_accuracy():
    base = {("badnets", "none"): _s(0.8, 0.95), ("badnets", "mixup"): _s(0.5, 0.95),
            ("badnets", dp_label(0.5)): _s(0.6, 0.9), ("badnets", dp_label(1.5)): _s(0.1, 0.6)}
    ok = _run({**base, ("badnets", "cutmix"): _s(0.2, 0.945)})[0]
    assert ok[0].holds and abs(ok[0].measured - 0.75) < 1e-9
    too_costly = _run({**base, ("badnets", "cutmix"): _s(0.2, 0.90)})[0]
    assert not too_costly[0].holds
    weak = _run({**base, ("badnets", "cutmix"): _s(0.6, 0.95)})[0]
    assert not weak[0].holds


def test_dpsgd_cost_uses_smallest_noise_that_defends_as_well_as_cutmix():
    s = {("badnets", "none"): _s(0.8, 0.95), ("badnets", "cutmix"): _s(0.2, 0.94), ("badnets", "mixup"): _s(0.5, 0.95),
         ("badnets", dp_label(0.5)): _s(0.6, 0.9), ("badnets", dp_label(1.5)): _s(0.1, 0.6)}
    claims, notes = _run(s)
    assert claims[1].holds and abs(claims[1].measured - (0.35 - 0.01)) < 1e-9
    assert any("dpsgd(sigma=1.5)" in n for n in notes)
    s[("badnets", dp_label(1.5))] = _s(0.3, 0.6)
    claims, notes = _run(s)
    assert claims[1].measured is None and not claims[1].holds


def test_params_reject_unknown_defense():
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="unknown defense"):
        AugmentationParams(defenses=["none", "magic"])
