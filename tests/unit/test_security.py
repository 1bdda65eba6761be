"""Benchmark protocol pieces: params validation, taxonomy tables from the registry, cell metrics on tiny data."""

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from tenfold.components.attacks import ATTACKS
from tenfold.components.data.images import ImageData
from tenfold.components.defenses import DEFENSES
from tenfold.studies.security import benchmark, crafted
from tenfold.studies.security.params import SecurityParams
from tenfold.studies.security.plan import craft_jobs, dilution_poisons, grid_jobs
from tenfold.studies.security.taxonomy import taxonomy_tables

torch.set_num_threads(1)  # tiny tensors: extra threads only add contention


def test_params_name_the_bad_key():
    with pytest.raises(ValidationError, match="unknown attack"):
        SecurityParams.model_validate({"craft": {"attacks": ["badnets", "nope"]}})
    with pytest.raises(ValidationError, match="unknown defense"):
        SecurityParams.model_validate({"grid_defenses": ["none", "nope"]})
    with pytest.raises(ValidationError, match="extra"):
        SecurityParams.model_validate({"budget": {"epsilon": 3}})


def test_taxonomy_tables_match_registry():
    t = taxonomy_tables()
    assert len(t["attack_taxonomy"]["rows"]) == len(ATTACKS)
    assert len(t["defense_taxonomy"]["rows"]) == len(DEFENSES)
    goal = t["attack_taxonomy"]["columns"].index("goal")
    assert {r[goal] for r in t["attack_taxonomy"]["rows"]} == {"targeted", "backdoor", "availability"}


def _data():
    rng = np.random.default_rng(0)
    x = rng.random((80, 1, 8, 8)).astype(np.float32) * 0.3
    y = np.tile(np.arange(4), 20)
    for c in range(4):
        x[y == c, :, c * 2 : (c + 1) * 2, :] += 0.7  # learnable class signal
    return ImageData("toy", x[:60], y[:60], x[60:], y[60:], 4, "synthetic")


def test_backdoor_cell_and_filter_report_precision_recall():
    sp = SecurityParams.model_validate(
        {
            "victim": {"width": 4, "epochs": 2, "finetune_epochs": 1, "batch_size": 16},
            "budget": {"poison_fraction": 0.1, "patch_size": 2},
            "craft": {"badnets": {"fraction": None}},
        }
    )  # use the budget
    data = _data()
    net = benchmark.train_clean(data, sp.victim, "cpu", 0)
    p = benchmark.craft("badnets", data, net, sp.budget, sp.craft, 0, "cpu")
    assert len(p.indices) == 6
    cell = benchmark.run_cell(p, "spectral_signatures", data, sp.victim, sp.defense, net, "cpu", 1)
    assert cell["victim"] == "from-scratch" and 0 <= cell["success"] <= 1
    assert 0 <= cell["filter_precision"] <= 1 and 0 <= cell["filter_recall"] <= 1 and cell["removed"] > 0
    again = benchmark.run_cell(p, "spectral_signatures", data, sp.victim, sp.defense, net, "cpu", 1)
    assert again == cell  # same seed, same metrics
    summary = benchmark.summarize([cell, again])
    assert summary[("badnets", "spectral_signatures")]["trials"] == 2


def test_victim_kind_override_fine_tunes_only_the_head():
    sp = SecurityParams.model_validate(
        {
            "victim": {"width": 4, "epochs": 1, "finetune_epochs": 1, "batch_size": 16},
            "budget": {"poison_fraction": 0.1, "patch_size": 2},
            "craft": {"badnets": {"fraction": None}},
        }
    )
    data = _data()
    net = benchmark.train_clean(data, sp.victim, "cpu", 0)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    p = benchmark.craft("badnets", data, net, sp.budget, sp.craft, 0, "cpu")
    ft = benchmark.run_cell(p, "none", data, sp.victim, sp.defense, net, "cpu", 1, victim="fine-tune")
    sc = benchmark.run_cell(p, "none", data, sp.victim, sp.defense, net, "cpu", 1, victim="from-scratch")
    assert ft["victim"] == "fine-tune" and sc["victim"] == "from-scratch"
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # the pretrained net is copied
    with pytest.raises(ValueError, match="victim"):
        benchmark.run_cell(p, "none", data, sp.victim, sp.defense, net, "cpu", 1, victim="transfer")


def test_grid_jobs_cover_both_victims_and_focus_blocks():
    sp = SecurityParams.model_validate(
        {
            "craft": {"attacks": ["badnets", "poison_frogs"]},
            "grid_defenses": ["none", "strip"],
            "grid_focus": [
                {"attacks": ["badnets"], "defenses": ["cutmix", "strip"]},
                {"attacks": ["gradient_matching+cutmix"], "defenses": ["none"]},
            ],
        }
    )
    poisons = [
        {"attack": a, "path": f"{a}_{t}.npz"}
        for a in ["badnets", "poison_frogs", "gradient_matching+cutmix"]
        for t in range(2)
    ]
    jobs = grid_jobs(sp, poisons)
    labels = {(e["attack"], lab) for e, _, _, lab in jobs}
    assert ("badnets", "none[fine-tune]") in labels and ("poison_frogs", "none[from-scratch]") in labels
    assert ("badnets", "cutmix") in labels and ("poison_frogs", "cutmix") not in labels
    assert ("gradient_matching+cutmix", "none[from-scratch]") in labels
    assert len(jobs) == 2 * (3 + 1) + 2 * 3 + 2 * 2  # badnets 4+1 (strip not repeated), frogs 3, adaptive 2
    assert {k for _, d, k, _ in jobs if d != "none"} == {None}
    with pytest.raises(ValidationError, match="unknown defense"):
        SecurityParams.model_validate({"grid_focus": [{"attacks": ["badnets"], "defenses": ["nope"]}]})


def test_dilution_diagnostic_separates_crafting_from_dilution():
    """Gradient-matching poisons raise the target's adversarial log-probability more than their unperturbed bases
    (gain > 0); a poison with the perturbation removed gains exactly nothing; the pretrained net is not modified."""
    sp = SecurityParams.model_validate(
        {
            "victim": {"width": 4, "epochs": 3, "batch_size": 16},
            "budget": {"poison_fraction": 0.1, "eps": 64},
            "craft": {"gradient_matching": {"iters": 30, "restarts": 1, "augment": False}},
        }
    )
    data = _data()
    net = benchmark.train_clean(data, sp.victim, "cpu", 0)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    p = benchmark.craft("gradient_matching", data, net, sp.budget, sp.craft, 0, "cpu")
    set_cfg = benchmark.TrainConfig(1, 16, 0.01, 0.0)
    d = benchmark.dilution_diagnostic(p, data, net, 3, 0.05, set_cfg, "cpu", 1)
    assert d["n_poison"] == 6 and d["gain"] == pytest.approx(d["poisons_only"] - d["bases_only"])
    assert d["gain"] > 1 and all(v <= 0 for k, v in d.items() if k in ("start", "poisons_only", "clean_set"))
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    p.x = data.x_train[p.indices].copy()  # no perturbation: nothing to gain
    d0 = benchmark.dilution_diagnostic(p, data, net, 3, 0.05, set_cfg, "cpu", 1)
    assert d0["gain"] == 0 and d0["set_gain"] == 0


def test_craft_jobs_add_the_adaptive_variants_and_dilution_takes_every_gradient_matching_poison():
    sp = SecurityParams.model_validate({"craft": {"attacks": ["badnets", "gradient_matching"], "adaptive": ["cutmix"]}})
    assert craft_jobs(sp) == [("badnets", None), ("gradient_matching", None), ("gradient_matching+cutmix", "cutmix")]
    assert craft_jobs(sp.model_copy(update={"craft": sp.craft.model_copy(update={"attacks": ["badnets"]})})) == [
        ("badnets", None)
    ]
    poisons = [{"attack": a, "path": a} for a in ["badnets", "gradient_matching", "gradient_matching+cutmix"]]
    assert [e["attack"] for e in dilution_poisons(sp, poisons)] == ["gradient_matching", "gradient_matching+cutmix"]
    off = SecurityParams.model_validate({"diagnostic": {"enabled": False}})
    assert dilution_poisons(off, poisons) == []


def test_manifest_records_its_params_and_refuses_other_ones(tmp_path):
    """craft_poisons records the data, clean-network and seed params; a later stage with other ones fails naming
    them (not with a shape error when the width differs, nor silently on another data subset)."""
    sp = SecurityParams.model_validate({"victim": {"width": 4, "epochs": 1, "batch_size": 16}})
    data = _data()
    net = benchmark.train_clean(data, sp.victim, "cpu", 0)
    out = crafted.poison_dir(tmp_path)
    out.mkdir(parents=True)
    torch.save(net.state_dict(), out / crafted.CLEAN_NET)
    entry = {"attack": "badnets", "trial": 0, "path": "elsewhere/badnets_0.npz", "n_poison": 3}
    crafted.write_manifest(out, crafted.manifest(sp, 0, data, 11, 0.5, [entry]))
    m = crafted.read_manifest(out, sp, 0)
    assert m["data_seed"] == 11 and m["poisons"][0]["path"] == str(out / "badnets_0.npz")
    assert m["made_with"]["security.victim.width"] == 4 and m["made_with"]["security.data.dataset"] == "mnist5k"
    wider = sp.model_copy(update={"victim": sp.victim.model_copy(update={"width": 8})})
    with pytest.raises(crafted.CraftedMismatch, match=r"security\.victim\.width: crafted with 4, this run 8"):
        crafted.read_manifest(out, wider, 0)
    other = sp.model_copy(update={"data": sp.data.model_copy(update={"n_train": 500})})
    with pytest.raises(crafted.CraftedMismatch, match=r"security\.data\.n_train") as err:
        crafted.read_manifest(out, other, 1)
    assert "common.seed: crafted with 0, this run 1" in str(err.value)
    assert "width" not in str(err.value)  # only the params that differ are named
    # the fine-tuning victim's params do not make the clean network: changing them needs no recrafting
    ft = sp.model_copy(update={"victim": sp.victim.model_copy(update={"finetune_epochs": 9})})
    assert crafted.read_manifest(out, ft, 0)["clean_acc"] == 0.5
    with pytest.raises(FileNotFoundError, match="run craft_poisons|craft_poisons"):
        crafted.read_manifest(tmp_path / "nowhere", sp, 0)
