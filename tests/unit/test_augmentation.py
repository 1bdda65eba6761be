"""The augmentation study's params and plan: its defense rows and the crafted poisons they need."""

import pytest
from pydantic import ValidationError

from tenfold.studies.augmentation import plan
from tenfold.studies.augmentation.params import AugmentationParams
from tenfold.studies.security.params import DPSGD


def test_params_reject_unknown_defense():
    with pytest.raises(ValidationError, match="unknown defense"):
        AugmentationParams(defenses=["none", "magic"])


def test_defense_plan_adds_one_dpsgd_row_per_noise_level():
    p = AugmentationParams(defenses=["none", "cutmix"], dp_noise=[0.5, 1.5])
    base = DPSGD(noise_multiplier=1.0, max_grad_norm=2.0)
    rows = plan.defense_plan(p, base)
    assert [(lab, name) for lab, name, _ in rows] == [
        ("none", "none"),
        ("cutmix", "cutmix"),
        ("dpsgd(sigma=0.5)", "dpsgd"),
        ("dpsgd(sigma=1.5)", "dpsgd"),
    ]
    assert rows[0][2] is None and rows[3][2].noise_multiplier == 1.5 and rows[3][2].max_grad_norm == 2.0
    assert base.noise_multiplier == 1.0  # security's params are not modified


def test_params_need_the_claims_backdoor_among_the_attacks():
    with pytest.raises(ValidationError, match="backdoor 'patch' must be one of attacks"):
        AugmentationParams(attacks=["badnets"], backdoor="patch")


def test_poisons_of_the_study_and_a_clear_error_for_uncrafted_attacks():
    p = AugmentationParams(
        attacks=["badnets", "gradient_matching+cutmix"], backdoor="badnets", setups=2, targeted_setups=2
    )
    crafted = [
        {"attack": a, "path": f"{a}_{t}.npz", "trial": t}
        for a in ["badnets", "poison_frogs", "gradient_matching+cutmix"]
        for t in range(3)
    ]
    assert [e["path"] for e in plan.poisons(p, crafted)] == [
        "badnets_0.npz",
        "badnets_1.npz",  # setup 2 left out
        "gradient_matching+cutmix_0.npz",
        "gradient_matching+cutmix_1.npz",
    ]
    with pytest.raises(ValueError, match=r"\['gradient_matching\+cutmix'\] not crafted.*rerun craft_poisons"):
        plan.poisons(p, crafted[:6])


def test_targeted_attacks_use_their_own_number_of_setups_and_the_schedule_starts_with_the_slow_victims():
    p = AugmentationParams(attacks=["patch", "gradient_matching"], backdoor="patch", setups=2, targeted_setups=1)
    crafted = [{"attack": a, "path": f"{a}_{t}", "trial": t} for a in ["patch", "gradient_matching"] for t in range(3)]
    kept = plan.poisons(p, crafted)
    assert [e["path"] for e in kept] == ["patch_0", "patch_1", "gradient_matching_0"]
    rows = plan.defense_plan(AugmentationParams(defenses=["none", "maxup"], dp_noise=[1.0]), DPSGD())
    order = plan.schedule(kept, rows)
    assert len(order) == 3 * 3 and [r[1] for _, r in order[:6]] == ["dpsgd"] * 3 + ["maxup"] * 3
