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
from tenfold.studies.security.plan import claim_first, craft_jobs, dilution_poisons, grid_jobs, grid_tasks
from tenfold.studies.security.taxonomy import taxonomy_tables

torch.set_num_threads(1)  # tiny tensors: extra threads only add contention
FAST = {"arch": "convnet", "augment": False, "warmup_epochs": 0}  # the digits victim: fast on toy data


def _victim(**kw):
    return {**FAST, **kw}


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
            "victim": _victim(width=4, epochs=2, finetune_epochs=1, batch_size=16),
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
            "victim": _victim(width=4, epochs=1, finetune_epochs=1, batch_size=16),
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
            "victim": _victim(width=4, epochs=3, batch_size=16),
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
    sp = SecurityParams.model_validate(
        {
            "craft": {"attacks": ["badnets", "gradient_matching"], "adaptive": ["cutmix"], "trials": 2, "targets": 8},
            "diagnostic": {"setups": 3},
        }
    )
    assert craft_jobs(sp) == [
        ("badnets", None, 2),
        ("gradient_matching", None, 8),
        ("gradient_matching+cutmix", "cutmix", 2),
    ]
    assert craft_jobs(sp.model_copy(update={"craft": sp.craft.model_copy(update={"attacks": ["badnets"]})})) == [
        ("badnets", None, 2)
    ]
    poisons = [
        {"attack": a, "path": f"{a}{t}", "trial": t}
        for a in ["badnets", "gradient_matching", "gradient_matching+cutmix"]
        for t in range(5)
    ]
    checked = dilution_poisons(sp, poisons)
    assert [(e["attack"], e["trial"]) for e in checked] == [("gradient_matching", t) for t in range(3)] + [
        ("gradient_matching+cutmix", t) for t in range(3)
    ]
    off = SecurityParams.model_validate({"diagnostic": {"enabled": False}})
    assert dilution_poisons(off, poisons) == []


def test_extra_targets_get_only_the_none_columns_and_tasks_share_the_plain_victim():
    """Gradient matching's targets beyond `trials` get the two `none` victims only (the claim); the columns that
    start from the plainly trained victim (none, filters, STRIP) form one task, each training defense its own."""
    sp = SecurityParams.model_validate(
        {
            "craft": {"attacks": ["badnets", "gradient_matching"], "trials": 1, "targets": 3},
            "grid_defenses": ["none", "spectral_signatures", "strip"],
            "grid_focus": [{"attacks": ["badnets", "gradient_matching"], "defenses": ["cutmix", "mixup"]}],
        }
    )
    poisons = [{"attack": "badnets", "path": "b0", "trial": 0}] + [
        {"attack": "gradient_matching", "path": f"g{t}", "trial": t} for t in range(3)
    ]
    jobs = grid_jobs(sp, poisons)
    by_path = {}
    for e, _, _, label in jobs:
        by_path.setdefault(e["path"], []).append(label)
    assert by_path["g2"] == ["none[from-scratch]", "none[fine-tune]"] == by_path["g1"]
    assert by_path["g0"] == ["none[from-scratch]", "none[fine-tune]", "spectral_signatures", "strip", "cutmix", "mixup"]
    tasks = grid_tasks(sp, poisons)
    assert [(e["path"], [c[2] for c in cols]) for e, cols in tasks][:3] == [
        ("b0", ["none[from-scratch]", "none[fine-tune]", "spectral_signatures", "strip"]),
        ("g0", ["none[from-scratch]", "none[fine-tune]", "spectral_signatures", "strip"]),
        ("g1", ["none[from-scratch]", "none[fine-tune]"]),
    ]
    assert sum(len(cols) for _, cols in tasks) == len(jobs)
    first = claim_first(tasks)  # the claim's setups are submitted first, the rest keeps its order
    kinds = [e["attack"] == "gradient_matching" for e, _ in first]
    assert kinds == sorted(kinds, reverse=True) and [e["path"] for e, _ in first][:3] == ["g0", "g1", "g2"]
    assert sorted(map(id, first)) == sorted(map(id, tasks))
    assert all(len(cols) == 1 for _, cols in tasks if cols[0][0] in ("cutmix", "mixup"))


def test_manifest_records_its_params_and_refuses_other_ones(tmp_path):
    """craft_poisons records the data, clean-network and seed params; a later stage with other ones fails naming
    them (not with a shape error when the width differs, nor silently on another data subset)."""
    sp = SecurityParams.model_validate({"victim": _victim(width=4, epochs=1, batch_size=16)})
    data = _data()
    net = benchmark.train_clean(data, sp.victim, "cpu", 0)
    out = crafted.poison_dir(tmp_path)
    out.mkdir(parents=True)
    torch.save(net.state_dict(), out / crafted.CLEAN_NET)
    entry = {"attack": "badnets", "trial": 0, "path": "elsewhere/badnets_0.npz", "n_poison": 3}
    crafted.write_manifest(out, crafted.manifest(sp, 0, data, 11, 0.5, [entry]))
    m = crafted.read_manifest(out, sp, 0)
    assert m["data_seed"] == 11 and m["poisons"][0]["path"] == str(out / "badnets_0.npz")
    assert m["made_with"]["security.victim.width"] == 4 and m["made_with"]["security.data.dataset"] == "cifar10"
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


def test_cifar10_data_missing_names_the_stage_that_builds_it(tmp_path):
    """The CPU default reads CIFAR-10 from the arrays of DVC stage build_cifar10: without them the stage fails
    before any training, naming the file and the stage to run (the folder's bad-input cases are cifar10.py's)."""
    from tenfold.core.errors import ArtifactError
    from tenfold.studies.security.params import Data

    with pytest.raises(ArtifactError, match="build_cifar10"):
        benchmark.load_data(Data(dataset="cifar10", n_train=100, n_test=50), tmp_path, 0)


@pytest.mark.slow  # imports the Prefect task module: seconds
def test_craft_task_shows_a_bar_of_crafting_iterations(tmp_path, capsys, monkeypatch):
    import logging

    import tasks.security as T

    monkeypatch.setattr(T, "get_run_logger", lambda: logging.getLogger("test"))  # no Prefect run here
    monkeypatch.setenv("TQDM_DISABLE", "1")  # as on a CI runner: asked for explicitly, the bar still shows
    sp = SecurityParams.model_validate(
        {"victim": _victim(width=4, epochs=1, batch_size=16), "craft": {"gradient_matching": {"iters": 3}}}
    )
    data = _data()
    net = benchmark.train_clean(data, sp.victim, "cpu", 0)
    args = ("gradient_matching", data, net, sp.budget, sp.craft, 0, 7, "cpu")
    entry = T.craft_poison.fn(*args, str(tmp_path / "gm.npz"), show_progress=True)
    err = capsys.readouterr().err
    assert "craft gradient_matching #0" in err and "/3 " in err  # a bar of 3 iterations x 1 restart
    T.craft_poison.fn(*args, str(tmp_path / "quiet.npz"))
    assert capsys.readouterr().err == ""  # off by default (CI, DVC without a terminal)
    assert np.array_equal(np.load(tmp_path / "gm.npz")["x"], np.load(tmp_path / "quiet.npz")["x"])
    assert entry["n_poison"] >= 1
