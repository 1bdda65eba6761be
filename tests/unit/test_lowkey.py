"""Unit tests of the LowKey library: alignment, gallery search, heads, blur/SSIM, the attack, params, web decode."""

import io

import numpy as np
import pytest
import torch

from tenfold.registry import ParamsError, validate_section
from tenfold.studies.lowkey.attack import GaussianBlur, LowKey, ssim
from tenfold.studies.lowkey.models import FaceNet, MarginHead
from tenfold.studies.lowkey.params import LowKeyAttack, LowKeyParams
from tenfold.studies.lowkey.pipeline import REFERENCE_112, alignment_theta, rank_k, similarity, thetas, to_tensor, warp


def test_similarity_recovers_a_known_transform():
    ang, s, t = 0.3, 1.7, np.array([5.0, -3.0])
    rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    src = np.random.default_rng(0).normal(size=(5, 2)) * 20
    m = similarity(src, (s * rot @ src.T).T + t)
    assert np.allclose(m[:2, :2], s * rot, atol=1e-8) and np.allclose(m[:2, 2], t, atol=1e-8)


def test_warp_puts_landmarks_on_the_reference_points():
    """Draw bright dots at 5 landmarks of a 100x80 image; after alignment they sit at the reference points."""
    crop, h, w = 56, 100, 80
    pts = np.array([[30.0, 40], [52, 38], [41, 55], [33, 70], [51, 69]])
    img = np.zeros((1, h, w, 3), np.uint8)
    for x, y in pts.astype(int):
        img[0, y - 1 : y + 2, x - 1 : x + 2] = 255
    out = warp(to_tensor(img), torch.from_numpy(alignment_theta(pts, (h, w), crop))[None], crop)[0, 0].numpy()
    for rx, ry in REFERENCE_112 * crop / 112:
        patch = out[int(round(ry)) - 2 : int(round(ry)) + 3, int(round(rx)) - 2 : int(round(rx)) + 3]
        assert patch.max() > 0.5, (rx, ry)


def test_thetas_fall_back_to_a_centre_crop_without_landmarks():
    th = thetas([None], (120, 60), 32)
    img = torch.zeros(1, 3, 120, 60)
    img[:, :, 30:90] = 1.0  # the centred 60x60 square
    assert warp(img, th, 32).min() > 0.99


def test_rank_k_on_a_constructed_gallery():
    g = np.eye(3)
    probes = np.array([[1, 0.1, 0], [0.2, 0.1, 1.0], [0.9, 1.0, 0]])
    ids = np.array([0, 2, 0])
    r = rank_k(g, np.arange(3), probes, ids, [1, 2, 3])
    assert r[1] == pytest.approx(2 / 3) and r[2] == 1.0 and r[3] == 1.0
    assert rank_k(g, np.arange(3), probes, ids, [1], metric="euclidean")[1] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="metric"):
        rank_k(g, np.arange(3), probes, ids, [1], metric="manhattan")


@pytest.mark.parametrize("kind", ["arcface", "cosface"])
def test_margin_heads_penalise_only_the_true_class(kind):
    head = MarginHead(kind, 8, 4, scale=10.0, margin=0.3)
    emb, y = torch.randn(6, 8), torch.tensor([0, 1, 2, 3, 0, 1])
    logits = head(emb, y)
    plain = 10.0 * torch.nn.functional.linear(
        torch.nn.functional.normalize(emb), torch.nn.functional.normalize(head.weight)
    )
    mask = torch.nn.functional.one_hot(y, 4).bool()
    assert torch.allclose(logits[~mask], plain[~mask], atol=1e-5)
    assert (logits[mask] < plain[mask]).all()


@pytest.mark.parametrize("backbone", ["resnet", "vgg", "mobilenet"])
def test_backbones_embed(backbone):
    net = FaceNet(backbone, 32, dim=16, width=4).eval()
    assert net(torch.rand(2, 3, 32, 32)).shape == (2, 16)


def test_blur_preserves_constants_and_ssim_is_one_on_identity():
    blur = GaussianBlur(5, 1.3)
    x = torch.full((1, 3, 16, 16), 0.4)
    assert torch.allclose(blur(x), x, atol=1e-6)
    y = torch.rand(2, 3, 24, 24)
    assert torch.allclose(ssim(y, y), torch.ones(2), atol=1e-5)
    assert (ssim(y, (y + 0.3 * torch.randn_like(y)).clamp(0, 1)) < 0.9).all()


def test_lowkey_moves_features_and_respects_step_budget():
    torch.manual_seed(0)
    models = [FaceNet("vgg", 32, 16, 4).eval(), FaceNet("resnet", 32, 16, 4).eval()]
    x = torch.rand(3, 3, 40, 36)
    th = thetas([None] * 3, (40, 36), 32)
    cfg = LowKeyAttack(n_iters=5, lr=0.01, c_sim=0.0, smooth_sigma=0.0, batch_size=3)
    lk = LowKey(models, 32, cfg)
    adv, stats = lk.protect(x, th, seed=1)
    with torch.no_grad():
        targets = lk.features(warp(x, th, 32), blurred=False)
        noise_only = lk.feature_distance(warp((x + 0.005).clamp(0, 1), th, 32), targets)
    assert (stats["feature_distance"] > noise_only.numpy()).all()
    assert (adv - x).abs().max() <= cfg.n_iters * cfg.lr + cfg.init_noise + 1e-6
    assert adv.min() >= 0 and adv.max() <= 1
    adv2, _ = lk.protect(x, th, seed=1)
    assert torch.equal(adv, adv2)  # deterministic for a seed


def test_params_reject_bad_values():
    assert isinstance(validate_section("lowkey", {}), LowKeyParams)
    with pytest.raises(ParamsError, match="lowkey.attack.n_itres"):
        validate_section("lowkey", {"attack": {"n_itres": 3}})
    with pytest.raises(ParamsError, match="held-out"):
        validate_section("lowkey", {"eval": {"heldout": {"name": "x", "backbone": "vgg", "head": "arcface"}}})
    with pytest.raises(ParamsError, match="blur_kernel"):
        validate_section("lowkey", {"attack": {"blur_kernel": 4}})


def _protector(max_bytes=200_000):
    from tenfold.studies.lowkey.params import LowKeyWeb
    from tenfold.studies.lowkey.web import Protector

    models = [FaceNet("vgg", 32, 16, 4).eval()]
    return Protector(models, 32, LowKeyAttack(n_iters=2), LowKeyWeb(max_bytes=max_bytes, max_side=128))


def test_web_decode_errors_are_clear():
    from PIL import Image

    from tenfold.studies.lowkey.web import UploadError

    prot = _protector()
    with pytest.raises(UploadError, match="not an image") as e:
        prot.decode(b"hello, this is text")
    assert e.value.status == 400
    with pytest.raises(UploadError, match="too large") as e:
        prot.decode(b"\0" * 300_000)
    assert e.value.status == 413
    buf = io.BytesIO()
    Image.fromarray(np.full((80, 80, 3), 128, np.uint8)).save(buf, format="PNG")
    with pytest.raises(UploadError, match="no face") as e:
        prot.decode(buf.getvalue())
    assert e.value.status == 422


def test_web_protects_a_face_photo():
    from PIL import Image
    from skimage.data import astronaut

    prot = _protector(max_bytes=2_000_000)
    buf = io.BytesIO()
    Image.fromarray(astronaut()).save(buf, format="PNG")
    img, theta = prot.decode(buf.getvalue())
    assert max(img.shape[:2]) == 128 and theta.shape == (1, 2, 3)
    seen = []
    png = prot.protect(img, theta, progress=lambda k, n: seen.append((k, n)))
    out = np.asarray(Image.open(io.BytesIO(png)))
    assert out.shape == img.shape and seen[-1] == (2, 2)


def test_smoothed_perturbation_is_low_frequency_and_bounded():
    """With smooth_sigma the filter is a blurred signed-step perturbation: within the step budget and with far
    less pixel-to-pixel variation than the release's per-pixel steps."""
    torch.manual_seed(0)
    models = [FaceNet("vgg", 32, 16, 4).eval()]
    x = torch.rand(2, 3, 40, 36)
    th = thetas([None] * 2, (40, 36), 32)
    per_pixel = LowKeyAttack(n_iters=6, lr=0.01, c_sim=0.0, smooth_sigma=0.0)
    rough = LowKey(models, 32, per_pixel).protect(x, th, seed=0)[0] - x
    cfg = LowKeyAttack(n_iters=6, lr=0.01, c_sim=0.0, smooth_sigma=2.0)
    smooth = LowKey(models, 32, cfg).protect(x, th, seed=0)[0] - x
    assert smooth.abs().max() <= cfg.n_iters * cfg.lr + cfg.init_noise + 1e-6
    assert smooth.abs().mean() > 0.005  # it did move
    tv = lambda d: (d[..., 1:, :] - d[..., :-1, :]).abs().mean() / d.abs().mean()  # noqa: E731
    assert tv(smooth) < 0.5 * tv(rough)


def test_eps_bounds_the_perturbation():
    models = [FaceNet("vgg", 32, 16, 4).eval()]
    x = torch.rand(1, 3, 40, 36)
    cfg = LowKeyAttack(n_iters=8, lr=0.01, c_sim=0.0, smooth_sigma=0.0, eps=0.02)
    adv, _ = LowKey(models, 32, cfg).protect(x, thetas([None], (40, 36), 32), seed=0)
    assert (adv - x).abs().max() <= 0.02 + 1e-6


def test_sweep_points_override_the_attack_and_are_validated():
    p = validate_section("lowkey", {"attack": {"lr": 0.003}, "sweep": {"points": [{"c_sim": 0.5}, {"lr": 0.01}]}})
    a, b = (p.attack_at(pt) for pt in p.sweep.points)
    assert (a.c_sim, a.lr) == (0.5, 0.003) and (b.c_sim, b.lr) == (p.attack.c_sim, 0.01)
    with pytest.raises(ParamsError, match="lowkey.sweep.points"):
        validate_section("lowkey", {"sweep": {"points": [{"lr": -1}]}})


def test_best_points_pick_the_reported_operating_points():
    from tenfold.studies.lowkey.plots import best_points

    ssim_, rank1 = [0.9, 0.86, 0.7, 0.5], [0.95, 0.9, 0.6, 0.6]
    assert best_points(ssim_, rank1, 0.85) == {"meets_ssim": 1, "lowest_rank1": 2}
    assert best_points(ssim_, rank1, 0.95)["meets_ssim"] is None


# ---------------------------------------------------------------- surrogate training: checkpoints, determinism
def _train_data(n=12, side=40, classes=3):
    g = torch.Generator().manual_seed(0)
    return (torch.rand(n, 3, side, side, generator=g), thetas([None] * n, (side, side), 32), torch.arange(n) % classes)


def _cfg(epochs=2):
    from tenfold.studies.lowkey.params import LowKeyTrain

    return LowKeyTrain(epochs=epochs, batch_size=4, width=4, embedding_dim=8)


SPEC = dict(name="vgg_arcface", backbone="vgg", head="arcface")


def _same(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_surrogate_training_ignores_the_global_rng():
    """Dropout masks, shuffles and jitter come from the surrogate's own generator: what other threads draw from
    torch's global RNG (surrogates train concurrently) cannot change the weights."""
    from tenfold.studies.lowkey.params import Surrogate
    from tenfold.studies.lowkey.train import train_surrogate

    x, th, y = _train_data()
    torch.manual_seed(1)
    a, ha = train_surrogate(Surrogate(**SPEC), x, th, y, 32, _cfg(), seed=5)
    torch.manual_seed(2)
    torch.rand(100)
    b, hb = train_surrogate(Surrogate(**SPEC), x, th, y, 32, _cfg(), seed=5)
    assert _same(a, b) and ha == hb
    c, _ = train_surrogate(Surrogate(**SPEC), x, th, y, 32, _cfg(), seed=6)
    assert not _same(a, c)
    assert all(m.gen is None for m in a.modules() if hasattr(m, "gen"))  # no generator left on the model


def test_killed_surrogate_training_resumes_to_identical_weights(tmp_path):
    from tenfold.core.checkpoints import Checkpoint
    from tenfold.studies.lowkey.params import Surrogate
    from tenfold.studies.lowkey.train import train_surrogate

    x, th, y = _train_data()
    full, hist = train_surrogate(Surrogate(**SPEC), x, th, y, 32, _cfg(3), 5, checkpoint=Checkpoint(None, ""))

    class Killed(Exception):
        pass

    def kill_after_first(rec):
        if rec["epoch"] == 1:
            raise Killed

    ckpt = Checkpoint(tmp_path / "s.pt", "fp")
    with pytest.raises(Killed):
        train_surrogate(Surrogate(**SPEC), x, th, y, 32, _cfg(3), 5, checkpoint=ckpt, on_epoch=kill_after_first)
    assert torch.load(tmp_path / "s.pt", weights_only=True)["epoch"] == 1
    seen = []
    resumed, hist2 = train_surrogate(
        Surrogate(**SPEC), x, th, y, 32, _cfg(3), 5, checkpoint=ckpt, on_epoch=lambda r: seen.append(r["epoch"])
    )
    assert seen == [2, 3] and hist2 == hist and _same(full, resumed)
    # a finished checkpoint is loaded, not retrained
    again, _ = train_surrogate(
        Surrogate(**SPEC), x, th, y, 32, _cfg(3), 5, checkpoint=ckpt, on_epoch=lambda r: seen.append(r["epoch"])
    )
    assert seen == [2, 3] and _same(full, again)


def test_surrogate_checkpoint_mismatch_restarts_and_corrupt_file_raises(tmp_path):
    from tenfold.core.checkpoints import Checkpoint, CheckpointError
    from tenfold.studies.lowkey.params import Surrogate
    from tenfold.studies.lowkey.train import train_surrogate

    x, th, y = _train_data()
    train_surrogate(Surrogate(**SPEC), x, th, y, 32, _cfg(1), 5, checkpoint=Checkpoint(tmp_path / "s.pt", "old"))
    seen = []
    train_surrogate(
        Surrogate(**SPEC),
        x,
        th,
        y,
        32,
        _cfg(1),
        5,
        checkpoint=Checkpoint(tmp_path / "s.pt", "new"),
        on_epoch=lambda r: seen.append(r["epoch"]),
    )
    assert seen == [1]  # other params: trained from scratch
    (tmp_path / "s.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="s.pt"):
        train_surrogate(Surrogate(**SPEC), x, th, y, 32, _cfg(1), 5, checkpoint=Checkpoint(tmp_path / "s.pt", "new"))


def test_split_reads_the_subject_count_from_the_data():
    from tenfold.components.data.faces import FaceData
    from tenfold.studies.lowkey.data import split, sweep_subset
    from tenfold.studies.lowkey.params import LowKeyData

    subjects, numbers = np.repeat(np.arange(6), 4), np.tile(np.arange(1, 5), 6)  # 6 subjects x 4 images
    faces = FaceData(np.zeros((24, 8, 8), np.uint8), subjects, numbers, "test")
    sp = split(faces, LowKeyData(train_subjects=2, gallery_number=1, probes_per_subject=2))
    assert sp.eval_subjects == 4 and sp.train.sum() == 8 and sp.gallery.sum() == 4 and sp.probes.sum() == 8
    assert set(numbers[sp.probes]) == {2, 3} and set(subjects[sp.probes]) == {2, 3, 4, 5}
    assert split(faces, LowKeyData(train_subjects=2, eval_subjects=3)).eval_subjects == 3
    sub, in_prb = sweep_subset(faces, sp.probes, 1)
    assert set(numbers[sub]) == {2} and in_prb.sum() == 4 and len(in_prb) == 8
    with pytest.raises(ValueError, match="train_subjects=5"):
        split(faces, LowKeyData(train_subjects=5))
