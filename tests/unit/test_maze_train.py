import numpy as np
import pytest
import torch

from tenfold.components.models.recurrent import SegmentNet, count_parameters
from tenfold.core.checkpoints import Checkpoint, CheckpointError
from tenfold.core.seeds import seeded
from tenfold.studies.maze.generate import generate
from tenfold.studies.maze.params import MazeTrain
from tenfold.studies.maze.train import batch_tensors, evaluate, masked_ce, train

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def data():
    return generate(64, 5, scale=1, seed=0)


def net(recurrent=True, iters=3, seed=0):
    return seeded(
        seed, lambda: SegmentNet(width=8, iters=iters, recurrent=recurrent, recall=True, init="kaiming_zero_residual")
    )


def test_effective_depth_and_twin_parameters():
    r, f = net(True, 4), net(False, 4)
    assert r.effective_depth == f.effective_depth == 20
    # the twin has distinct weights per iteration: 3 more copies of the iterated block
    block = count_parameters(r.body[0])
    assert count_parameters(f) - count_parameters(r) == 3 * block
    with pytest.raises(ValueError, match="cannot run"):
        f.predict_iters(torch.zeros(1, 3, 9, 9), [5])


def test_predict_iters_matches_forward(data):
    m = net()
    x, _, _ = batch_tensors(data["codes"], data["targets"], np.arange(4), CPU)
    many = m.predict_iters(x, [1, 3, 6])
    for k in (1, 3, 6):
        torch.testing.assert_close(many[k], m(x, iters=k).argmax(1))


def test_masked_loss_ignores_walls():
    logits = torch.zeros(1, 2, 2, 2)
    logits[0, 1, 0, 0] = 10.0  # confident "path" on a wall pixel
    y = torch.zeros(1, 2, 2, dtype=torch.long)
    mask = torch.tensor([[[False, True], [True, True]]])
    assert masked_ce(logits, y, mask).item() == pytest.approx(np.log(2), rel=1e-5)


def test_exact_match_of_a_perfect_and_a_wrong_predictor(data):
    class Oracle(torch.nn.Module):
        recurrent = True

        def eval(self):
            return self

        def to(self, d):
            return self

        def predict_iters(self, x, iters):
            return {k: self.y for k in iters}

    o = Oracle()
    x, y, _ = batch_tensors(data["codes"], data["targets"], np.arange(8), CPU)
    o.y = y
    assert evaluate(o, data["codes"][:8], data["targets"][:8], [1], CPU)[1] == 1.0
    y2 = y.clone()
    y2[0] = 0
    o.y = y2
    assert evaluate(o, data["codes"][:8], data["targets"][:8], [1], CPU)[1] == 7 / 8


def test_training_reduces_loss(data):
    torch.manual_seed(0)
    m = net()
    cfg = MazeTrain(epochs=12, batch_size=16, lr=5e-3, warmup_epochs=0, alpha=0.0)
    hist = train(m, data["codes"], data["targets"], cfg, CPU, seed=1)
    assert hist[-1]["loss"] < hist[0]["loss"] * 0.9


def test_killed_run_resumes_to_identical_weights(tmp_path, data):
    cfg = MazeTrain(epochs=3, batch_size=16, lr=2e-3, warmup_epochs=0.5, alpha=0.5)
    full = net()
    train(full, data["codes"], data["targets"], cfg, CPU, seed=1)
    ck = tmp_path / "ck.pt"
    part = net()
    train(part, data["codes"], data["targets"], cfg, CPU, seed=1, checkpoint=Checkpoint(ck, "a"), epochs=1)
    resumed = net(seed=123)  # different init: everything must come from the checkpoint
    hist = train(resumed, data["codes"], data["targets"], cfg, CPU, seed=1, checkpoint=Checkpoint(ck, "a"))
    assert [h["epoch"] for h in hist] == [1, 2, 3]
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b)


def test_stale_checkpoint_starts_over_and_a_corrupt_one_is_an_error(tmp_path, data, caplog):
    cfg = MazeTrain(epochs=1, batch_size=32, warmup_epochs=0)
    ck = tmp_path / "ck.pt"
    train(net(), data["codes"], data["targets"], cfg, CPU, seed=1, checkpoint=Checkpoint(ck, "old"))
    with caplog.at_level("WARNING", logger="tenfold.checkpoints"):
        hist = train(net(), data["codes"], data["targets"], cfg, CPU, seed=1, checkpoint=Checkpoint(ck, "new"))
    assert "starting over" in caplog.text and str(ck) in caplog.text
    assert len(hist) == 1 and torch.load(ck, weights_only=True)["fingerprint"] == "new"
    ck.write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match=f"{ck}.*rm {ck}"):
        train(net(), data["codes"], data["targets"], cfg, CPU, seed=1, checkpoint=Checkpoint(ck, "new"))
    assert ck.read_bytes() == b"\x00garbage"  # never silently discarded
