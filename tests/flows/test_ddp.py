"""Data-parallel training under torchrun (2 CPU processes, gloo): the maze and depth nets train like single-process
training (same global batches; tolerance below), a killed run resumes from rank 0's checkpoint, and each flow logs
once."""

import json

import pytest
import torch

from tasks.ddp import run_torchrun
from tenfold.components.models.recurrent import SegmentNet
from tenfold.core.runtime import atomic_savez
from tenfold.core.seeds import seeded
from tenfold.studies.maze.generate import generate
from tenfold.studies.maze.params import MazeTrain
from tenfold.studies.maze.train import train

NET = {"width": 8, "iters": 3, "recurrent": True, "recall": True, "init": "kaiming_zero_residual"}
CFG = MazeTrain(epochs=2, batch_size=16, lr=2e-3, warmup_epochs=0.5, alpha=0.5)
# float sums over ranks come in another order than over one batch: the two runs agree to this tolerance
TOL = 1e-4


def _spec(tmp_path, **kw):
    data = generate(48, 5, scale=1, seed=0)
    atomic_savez(tmp_path / "data.npz", compress=False, codes=data["codes"], targets=data["targets"])
    return data, {
        "data": str(tmp_path / "data.npz"),
        "net": NET,
        "cfg": CFG.model_dump(),
        "seed": 7,
        "threads": 1,
        "device": "cpu",
        **kw,
    }


@pytest.mark.slow
def test_two_processes_match_one_and_resume_after_a_kill(tmp_path):
    data, spec = _spec(tmp_path)
    single = seeded(7, lambda: SegmentNet(**NET))
    hist1 = train(single, data["codes"], data["targets"], CFG, torch.device("cpu"), seed=7)
    out = torch.load(run_torchrun("tenfold.studies.maze.distributed", spec, 2, tmp_path / "a"), weights_only=True)
    assert out["world_size"] == 2 and [h["epoch"] for h in out["history"]] == [1, 2]
    for a, b in zip(hist1, out["history"]):
        assert a["loss"] == pytest.approx(b["loss"], rel=TOL)
    for k, v in single.state_dict().items():
        torch.testing.assert_close(out["model"][k], v, atol=TOL, rtol=TOL)
    # killed after one epoch (simulated: a run that stops there), then resumed from rank 0's checkpoint
    ck = tmp_path / "ck.pt"
    run_torchrun(
        "tenfold.studies.maze.distributed",
        {**spec, "checkpoint": str(ck), "fingerprint": "f", "epochs": 1},
        2,
        tmp_path / "b",
    )
    assert torch.load(ck, weights_only=True)["epoch"] == 1
    resumed = torch.load(
        run_torchrun(
            "tenfold.studies.maze.distributed", {**spec, "checkpoint": str(ck), "fingerprint": "f"}, 2, tmp_path / "c"
        ),
        weights_only=True,
    )
    assert [h["epoch"] for h in resumed["history"]] == [1, 2]
    for k, v in out["model"].items():
        torch.testing.assert_close(resumed["model"][k], v, atol=1e-6, rtol=1e-6)


@pytest.mark.slow
def test_maze_flow_with_nproc_2_logs_once(prefect_harness, tiny, tmp_path, check_study_outputs):
    from mlflow.tracking import MlflowClient

    from flows.maze import build_mazes_flow, maze_flow

    params = tiny(["maze"], {"common": {"nproc": 2}})
    build_mazes_flow(params_path=str(params), root=str(tmp_path))
    out = maze_flow(params_path=str(params), root=str(tmp_path))
    check_study_outputs(tmp_path, out, "maze", {"extrapolation", "more_iterations_help"})
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("maze").experiment_id])
    assert len(runs) == 1
    assert torch.load(tmp_path / "checkpoints" / "maze" / "recurrent.pt", weights_only=True)["epoch"] == 2
    assert json.loads((tmp_path / "results" / "maze.json").read_text())["final_train_loss"] > 0


DEPTH_NETS = [
    # residual (convs, no BatchNorm) and MLP nets of the depth study, recurrent and feed-forward
    {"family": "residual", "depth": 11, "recurrent": True, "width": 4, "shape": [3, 8, 8], "classes": 4},
    {"family": "mlp", "depth": 4, "recurrent": False, "width": 16, "shape": [3, 8, 8], "classes": 4},
]


def _depth_spec(tmp_path, net: dict, **kw):
    from tenfold.studies.depth.params import DepthTrain

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(50, 3, 8, 8, generator=g), torch.randint(0, 4, (50,), generator=g)  # 50: a short last batch
    atomic_savez(tmp_path / "depth.npz", compress=False, x=x.numpy(), y=y.numpy())
    cfg = DepthTrain(epochs=3, batch_size=16, lr=0.05, warmup_epochs=1, milestones=[0.6], clip=1.0)
    spec = {
        "data": str(tmp_path / "depth.npz"),
        "net": {**net, "init": "default", "init_seed": 3},
        "cfg": cfg.model_dump(),
    }
    return x, y, cfg, {**spec, "lr": 0.05, "shuffle_seed": 9, "threads": 1, "device": "cpu", **kw}


@pytest.mark.slow
@pytest.mark.parametrize("net", DEPTH_NETS, ids=lambda n: n["family"])
def test_depth_net_two_processes_match_one_and_resume_after_a_kill(tmp_path, net):
    from tenfold.studies.depth import distributed as entry
    from tenfold.studies.depth.train import train as depth_train

    x, y, cfg, spec = _depth_spec(tmp_path, net)
    single = entry.build(spec["net"])
    hist1 = depth_train(single, x, y, cfg, 0.05, 9)
    out = torch.load(run_torchrun("tenfold.studies.depth.distributed", spec, 2, tmp_path / "a"), weights_only=True)
    assert out["world_size"] == 2 and [h["epoch"] for h in out["history"]] == [1, 2, 3]
    assert out["history"][-1]["loss"] < out["history"][0]["loss"]  # it trains
    for a, b in zip(hist1, out["history"]):
        assert a["loss"] == pytest.approx(b["loss"], rel=TOL)
    for k, v in single.state_dict().items():
        torch.testing.assert_close(out["model"][k], v, atol=TOL, rtol=TOL)
    # killed after one epoch, then resumed from rank 0's checkpoint: the same weights as the uninterrupted run
    ck = {"checkpoint": str(tmp_path / "ck.pt"), "fingerprint": "f"}
    run_torchrun("tenfold.studies.depth.distributed", {**spec, **ck, "epochs": 1}, 2, tmp_path / "b")
    assert torch.load(tmp_path / "ck.pt", weights_only=True)["epoch"] == 1
    resumed_path = run_torchrun("tenfold.studies.depth.distributed", {**spec, **ck}, 2, tmp_path / "c")
    resumed = torch.load(resumed_path, weights_only=True)
    assert [h["epoch"] for h in resumed["history"]] == [1, 2, 3]
    for k, v in out["model"].items():
        torch.testing.assert_close(resumed["model"][k], v, atol=1e-6, rtol=1e-6)


@pytest.mark.slow
def test_depth_flow_with_nproc_2_logs_once(prefect_harness, tiny, tmp_path, check_study_outputs):
    from mlflow.tracking import MlflowClient

    from flows.depth import depth_flow
    from tests.support.cifar import built_cifar_slice

    built_cifar_slice(tmp_path)
    params = tiny(["depth"], {"common": {"nproc": 2}})
    out = depth_flow(params_path=str(params), root=str(tmp_path))
    r = check_study_outputs(tmp_path, out, "depth", {"depth_emulation"})
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("depth").experiment_id])
    assert len(runs) == 1
    ck = torch.load(tmp_path / "checkpoints" / "depth" / "residual_d11_rec_s0.pt", weights_only=True)
    assert ck["epoch"] == len(ck["history"]) >= 1 and all(h["loss"] > 0 for h in ck["history"])
    assert {row[0] for row in r["tables"]["depth"]["rows"]} == {"residual", "mlp"}
