"""Unit tests of center smoothing: distances, the blocked median step, `Smooth` against the one-at-a-time
reference, the certificate's guarantee on a known function, params and base models."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm

from tenfold.core.seeds import seeded
from tenfold.registry import ParamsError, validate_section
from tenfold.studies.smoothing import distances as D
from tenfold.studies.smoothing.experiment import certify_inputs, summarize
from tenfold.studies.smoothing.models import ConvAutoencoder, CSReconstructor, HaarFaceBoxes, gaussian_matrix
from tenfold.studies.smoothing.params import SmoothingParams
from tenfold.studies.smoothing.reference import certify_loop
from tenfold.studies.smoothing.smooth import Certificate, Smooth


@pytest.fixture(autouse=True)
def one_thread():
    """Single-threaded torch: tiny tensors gain nothing from threads and the machine is shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class Tanh(torch.nn.Module):
    """A smooth nonlinear vector-valued function of a 4-d input."""

    def forward(self, x):
        return torch.tanh(3 * x)


def tiny_ae():
    return seeded(0, lambda: ConvAutoencoder((1, 8, 8), latent_dim=4, widths=(2, 4, 4)))


# ------------------------------------------------------------------ distances
def test_l2_and_angular_match_numpy():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 7)), rng.normal(size=(5, 7))
    ta, tb = torch.tensor(a), torch.tensor(b)
    np.testing.assert_allclose(D.l2(ta, tb).numpy(), np.linalg.norm(a - b, axis=1))
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    np.testing.assert_allclose(D.angular(ta, tb).numpy(), np.arccos(cos) / np.pi)
    assert float(D.angular(ta[:1], -ta[:1])) == pytest.approx(1.0)


def test_total_variation_of_difference():
    tv1 = D.get_distance("tv1", (1, 3, 3))
    a = torch.zeros(1, 9)
    # a constant shift has no variation: TV of the difference is a pseudometric
    assert float(tv1(a, a + 0.7)) == pytest.approx(0.0)
    b = torch.zeros(1, 1, 3, 3)
    b[0, 0, 1, 1] = 1.0  # one bright pixel: 4 unit jumps
    assert float(tv1(a, b.reshape(1, 9))) == pytest.approx(4.0)
    # two channels: tv2 takes the l2 norm across channels, tv1 the l1 norm
    c = torch.zeros(1, 2, 3, 3)
    c[0, :, 1, 1] = 1.0
    t1, t2 = D.get_distance("tv1", (2, 3, 3)), D.get_distance("tv2", (2, 3, 3))
    assert float(t1(torch.zeros(1, 18), c.reshape(1, 18))) == pytest.approx(8.0)
    assert float(t2(torch.zeros(1, 18), c.reshape(1, 18))) == pytest.approx(4 * math.sqrt(2))
    with pytest.raises(ValueError, match="image shape"):
        D.get_distance("tv1")


def test_iou_distance_cases():
    box = torch.tensor([0.0, 0.0, 2.0, 2.0])
    none = torch.tensor([-1.0, -1.0, -1.0, -1.0])
    assert float(D.iou_distance(box, box)) == 0.0
    assert float(D.iou_distance(box, torch.tensor([3.0, 3.0, 4.0, 4.0]))) == 1.0
    assert float(D.iou_distance(box, torch.tensor([1.0, 0.0, 3.0, 2.0]))) == pytest.approx(1 - 2 / 6)
    assert float(D.iou_distance(box, none)) == 1.0 and float(D.iou_distance(none, none)) == 0.0


def test_unknown_and_optional_distances():
    with pytest.raises(ValueError, match="unknown distance"):
        D.get_distance("l3")
    try:
        import lpips  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="optional"):
            D.get_distance("lpips", (1, 8, 8))


@settings(max_examples=5, deadline=None)
@given(n=st.integers(1, 9), m=st.integers(1, 9), block=st.integers(1, 200), name=st.sampled_from(["l2", "angular"]))
def test_blocked_matrix_equals_elementwise(n, m, block, name):
    g = torch.Generator().manual_seed(n * 31 + m)
    a, b = torch.randn(n, 5, generator=g), torch.randn(m, 5, generator=g)
    dist = D.get_distance(name)
    full = dist(a.unsqueeze(1), b.unsqueeze(0))
    blocks = list(D.pairwise_blocks(dist, a, b, block))
    assert sum(blk.shape[0] for _, blk in blocks) == n
    assert all(blk.numel() <= max(block, m) for _, blk in blocks)  # never more than a block at once
    torch.testing.assert_close(D.pairwise(dist, a, b, block), full, rtol=1e-9, atol=1e-9)


# ------------------------------------------------------------------ Smooth
def test_quantile_level_formula_and_invalid():
    s = Smooth(Tanh(), "l2", sigma=0.5, n_pred=1000, n_cert=2000, delta=0.05)
    q = norm.cdf(norm.ppf(0.55) + 0.2 / 0.5) + math.sqrt(math.log(1 / 0.005) / 4000)
    assert s.quantile_level(0.2) == pytest.approx(q)
    assert s.quantile_level(5.0) is None  # q > 1: no certificate


def test_abstain_test_thresholds():
    s = Smooth(Tanh(), "l2", sigma=0.5, n_pred=2000, delta=0.05)
    d1 = math.sqrt(math.log(2 / 0.005) / 4000)
    ok, got_d1, d2 = s.abstain_test(0.6)
    assert ok and got_d1 == pytest.approx(d1) and d2 == pytest.approx(0.5 - 0.6 + d1)
    assert not s.abstain_test(0.5 + d1 - 0.05 - 1e-3)[0]
    assert s.abstain_test(0.5 + d1 - 0.05 + 1e-3)[0]


def test_order_statistic_is_conservative():
    d = torch.arange(1, 11, dtype=torch.float64)  # 1..10
    assert Smooth.order_statistic(d, 0.5) == 5.0
    assert Smooth.order_statistic(d, 0.51) == 6.0  # at least 51% of the distances must be <= R
    assert Smooth.order_statistic(d, 1.0) == 10.0


def test_batched_certify_matches_one_at_a_time_loop():
    model = tiny_ae()
    x = torch.rand(1, 8, 8, generator=torch.Generator().manual_seed(1))
    s = Smooth(model, "l2", sigma=0.3, n_pred=200, n_cert=150, delta=0.2, batch_size=64, block_elems=900)
    eps = [0.02, 0.1]
    fast, slow = s.certify(x, eps, seed=3), certify_loop(s, x, eps, seed=3)
    assert not fast.abstained and all(fast.eps_out[e] is not None for e in eps)
    assert fast.abstained == slow.abstained
    assert fast.p_hat == slow.p_hat
    assert fast.radius == pytest.approx(slow.radius, rel=1e-5)
    assert fast.smoothing_error == pytest.approx(slow.smoothing_error, rel=1e-4, abs=1e-6)
    for e in eps:
        assert fast.eps_out[e] == pytest.approx(slow.eps_out[e], rel=1e-4)


def test_same_seed_same_certificate_other_seed_differs():
    s = Smooth(Tanh(), "l2", sigma=0.25, n_pred=600, n_cert=400, delta=0.1, batch_size=100)
    x = torch.tensor([0.1, -0.2, 0.3, 0.0])
    a, b, c = s.certify(x, 0.1, seed=0), s.certify(x, 0.1, seed=0), s.certify(x, 0.1, seed=1)
    assert a.eps_out == b.eps_out and a.radius == b.radius
    assert a.eps_out != c.eps_out


def test_certificate_bounds_the_center_shift():
    """The guarantee: for ||x - x'|| <= eps_in, d(center(x), center(x')) <= eps_out (whp)."""
    s = Smooth(Tanh(), "l2", sigma=0.25, n_pred=800, n_cert=2000, delta=0.1, batch_size=400)
    x = torch.tensor([0.1, -0.2, 0.3, 0.05])
    eps = 0.15
    base = s.certify(x, eps, seed=0)
    assert not base.abstained and base.eps_out[eps] is not None
    g = torch.Generator().manual_seed(5)
    for k in range(3):
        u = torch.randn(4, generator=g)
        xp = x + eps * u / u.norm()
        other = s.certify(xp, eps, seed=10 + k)
        assert not other.abstained
        assert float(torch.norm(base.center.double() - other.center.double())) <= base.eps_out[eps]


def test_eps_out_grows_with_eps_in_and_smoothing_error_is_small_for_a_smooth_function():
    s = Smooth(Tanh(), "l2", sigma=0.2, n_pred=600, n_cert=1000, delta=0.1)
    c = s.certify(torch.zeros(4), [0.02, 0.1, 0.2], seed=0)
    outs = [c.eps_out[e] for e in (0.02, 0.1, 0.2)]
    assert outs == sorted(outs) and outs[-1] > outs[0]
    # f = tanh(3x) is odd, so the center at 0 stays near f(0) = 0 relative to the noise spread
    assert c.smoothing_error < c.radius


def test_high_dimensional_variant_uses_candidates():
    s = Smooth(Tanh(), "l2", sigma=0.2, n_pred=600, n_cert=500, n_cntr=10, delta=0.1, output_is_hd=True)
    c = s.certify(torch.zeros(4), 0.05, seed=0)
    assert not c.abstained and c.eps_out[0.05] > 0
    with pytest.raises(ValueError, match="standard"):
        certify_loop(s, torch.zeros(4), [0.05])


def test_batch_norm_eval_mode_is_explicit():
    m = tiny_ae().train()
    Smooth(m, "l2", sigma=0.1, n_pred=500, delta=0.1)
    assert not m.training
    m.train()
    Smooth(m, "l2", sigma=0.1, n_pred=500, delta=0.1, eval_mode=False)
    assert m.training  # the official code's behaviour, kept only for the ablation


def test_bad_arguments():
    with pytest.raises(ValueError, match="sigma"):
        Smooth(Tanh(), "l2", sigma=0.0)
    with pytest.raises(ValueError, match="delta"):
        Smooth(Tanh(), "l2", sigma=0.1, delta=0.7)


def test_summary_medians_and_rates():
    certs = [
        Certificate(False, 1.0, 0.6, 0.04, -0.06, smoothing_error=0.1, eps_out={0.1: 3.0}, quantile={0.1: 0.7}),
        Certificate(False, 2.0, 0.55, 0.04, -0.01, smoothing_error=0.3, eps_out={0.1: 5.0}, quantile={0.1: 0.7}),
        Certificate(True, 9.0, 0.4, 0.04, 0.14, eps_out={0.1: None}, quantile={0.1: 0.7}),
    ]
    (row,) = summarize(certs, [0.1])
    assert row["abstain_rate"] == pytest.approx(1 / 3) and row["certified"] == pytest.approx(2 / 3)
    assert row["median_eps_out"] == 4.0 and row["median_smoothing_error"] == pytest.approx(0.2)
    assert row["median_radius"] == 1.5


def test_certify_inputs_rescales_eps_in():
    s = Smooth(Tanh(), "l2", sigma=0.2 * 10, n_pred=500, n_cert=300, delta=0.1)
    (c,) = certify_inputs(s, torch.zeros(1, 4), [0.05], seed=0, scale=10.0)
    assert list(c.eps_out) == [0.05] and c.quantile[0.05] == pytest.approx(s.quantile_level(0.5))


# ------------------------------------------------------------------ params and models
def test_params_defaults_and_errors():
    p = validate_section("smoothing", {})
    assert isinstance(p, SmoothingParams)
    with pytest.raises(ParamsError, match=r"smoothing.smooth.*n_pred >= "):
        validate_section("smoothing", {"smooth": {"n_pred": 100, "delta": 0.05}})
    with pytest.raises(ParamsError, match="claim_sigma"):
        validate_section("smoothing", {"autoencoder": {"sigmas": [0.1], "claim_sigma": 0.2}})
    with pytest.raises(ParamsError, match="unknown key"):
        validate_section("smoothing", {"autoencoder": {"sigma": 0.1}})
    with pytest.raises(ParamsError, match="faces"):
        validate_section("smoothing", {"smooth": {"n_pred": 2000}, "faces": {"n_pred": 100}})


def test_models_shapes_and_seeded_matrix():
    ae = tiny_ae().eval()
    assert ae(torch.rand(3, 1, 8, 8)).shape == (3, 1, 8, 8)
    a, b = gaussian_matrix(64, 16, seed=0), gaussian_matrix(64, 16, seed=0)
    assert torch.equal(a, b) and not torch.equal(a, gaussian_matrix(64, 16, seed=1))
    big = gaussian_matrix(784, 256, seed=0)
    assert float(big.var()) == pytest.approx(1 / 256, rel=0.05)
    cs = CSReconstructor(a, (1, 8, 8), (2, 4, 4)).eval()
    x = torch.rand(2, 1, 8, 8)
    assert cs.measure(x).shape == (2, 16) and cs(cs.measure(x)).shape == (2, 1, 8, 8)
    with pytest.raises(ValueError, match="rows"):
        CSReconstructor(a, (1, 4, 4))


def test_haar_finds_an_att_face_and_reports_none_on_a_blank_image(root):
    from tenfold.components.data.faces import load_att

    faces = load_att([root.parent / "shared" / "data"])
    det = HaarFaceBoxes(downscale=1.5, min_size=40)
    boxes = det(torch.from_numpy(np.stack([faces.images[0], np.zeros_like(faces.images[0])]).astype(np.float32)))
    h, w = faces.images[0].shape
    x1, y1, x2, y2 = boxes[0].tolist()
    assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h and (x2 - x1) >= 30
    assert boxes[1].tolist() == [-1.0, -1.0, -1.0, -1.0]


def test_haar_detector_pickles_for_other_processes(root):
    """Dask workers and process pools receive the detector pickled: the copy finds the same boxes."""
    import pickle

    from tenfold.components.data.faces import load_att

    faces = load_att([root.parent / "shared" / "data"])
    det = HaarFaceBoxes(downscale=1.5, min_size=40)
    copy = pickle.loads(pickle.dumps(det))
    x = torch.from_numpy(faces.images[:3].astype(np.float32))
    assert torch.equal(copy(x), det(x)) and copy.min_size == det.min_size and not copy.cascade.empty()
