"""Benchmark protocol pieces: params validation, taxonomy tables from the registry, cell metrics on tiny data."""
import numpy as np
import pytest
import torch
from pydantic import ValidationError

from tenfold.attacks.registry import ATTACKS, DEFENSES, taxonomy_tables
from tenfold.data.images import ImageData
from tenfold.security import benchmark
from tenfold.security.params import SecurityParams

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
        x[y == c, :, c * 2:(c + 1) * 2, :] += 0.7     # learnable class signal
    return ImageData("toy", x[:60], y[:60], x[60:], y[60:], 4, "synthetic")


def test_backdoor_cell_and_filter_report_precision_recall():
    sp = SecurityParams.model_validate({"victim": {"width": 4, "epochs": 2, "finetune_epochs": 1, "batch_size": 16},
                                        "budget": {"poison_fraction": 0.1, "patch_size": 2},
                                        "craft": {"badnets": {"fraction": None}}})  # use the budget
    data = _data()
    net = benchmark.train_clean(data, sp.victim, "cpu", 0)
    p = benchmark.craft("badnets", data, net, sp.budget, sp.craft, 0, 0, "cpu")
    assert len(p.indices) == 6
    cell = benchmark.run_cell(p, "spectral_signatures", data, sp.victim, sp.defense, net, "cpu", 1)
    assert cell["victim"] == "from-scratch" and 0 <= cell["success"] <= 1
    assert 0 <= cell["filter_precision"] <= 1 and 0 <= cell["filter_recall"] <= 1 and cell["removed"] > 0
    again = benchmark.run_cell(p, "spectral_signatures", data, sp.victim, sp.defense, net, "cpu", 1)
    assert again == cell                                        # same seed, same metrics
    summary = benchmark.summarize([cell, again])
    assert summary[("badnets", "spectral_signatures")]["trials"] == 2
