"""Unit tests of the LowKey library: the two MobileFaceNets against their key listings, weights checks, alignment,
gallery search, AUC, blur/SSIM, the attack (snapshots, several faces), params, the CelebA split, quality."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tenfold.components.data import sources
from tenfold.components.models.facemodels import (
    PRETRAINED,
    TEMPLATE_112,
    MobileFaceNetCASIA,
    MobileFaceNetMS1M,
    TEMPLATE_112x96,
    WeightsError,
    build,
    load_pretrained,
    load_strict,
    read_state,
    surrogate_spec,
)
from tenfold.registry import ParamsError, validate_section
from tenfold.studies.lowkey.attack import GaussianBlur, LowKey, footprint_box, jitter_thetas, ssim, step_direction
from tenfold.studies.lowkey.params import LowKeyAttack, LowKeyParams
from tenfold.studies.lowkey.pipeline import alignment_theta, similarity, thetas, to_tensor, warp
from tenfold.studies.lowkey.recognizers import rank_k, verification_auc

SHARED = sources.shared_root(project_root=Path(__file__).resolve().parents[2])  # the data-source table's root
KEYS = (SHARED / sources.get("mobilefacenet_ms1m").offline).parent  # the weights' key listings lie beside them


def _listing(name: str) -> dict[str, tuple]:
    out = {}
    for line in (KEYS / f"{name}.keys.txt").read_text().splitlines():
        key, shape, _ = line.split("\t")
        out[key] = tuple(int(v) for v in shape.strip("()").split(",") if v.strip())
    return out


@pytest.mark.parametrize("cls,listing", [(MobileFaceNetMS1M, "ms1m_foamliu"), (MobileFaceNetCASIA, "casia_xiaoccer")])
def test_architectures_match_the_published_key_listings(cls, listing):
    if not (KEYS / f"{listing}.keys.txt").exists():
        pytest.skip("shared data not available")
    want = _listing(listing)
    have = {k: tuple(v.shape) for k, v in cls().state_dict().items()}
    assert have == want


@pytest.mark.parametrize("cls,size", [(MobileFaceNetMS1M, (112, 112)), (MobileFaceNetCASIA, (112, 96))])
def test_mobilefacenets_embed_their_input_size(cls, size):
    assert cls().eval()(torch.rand(2, 3, *size)).shape == (2, 128)


def test_face_model_interface_normalises_and_states_its_input():
    m = build("x", surrogate_spec()).eval()
    e = m(torch.rand(3, 3, 112, 112))
    assert torch.allclose(e.norm(dim=1), torch.ones(3), atol=1e-5)
    assert m.size == (112, 112) and np.allclose(m.template, TEMPLATE_112) and "0.485" in m.normalisation
    assert PRETRAINED["casia"].size == (112, 96) and np.allclose(
        PRETRAINED["casia"].template[:, 0], TEMPLATE_112[:, 0] - 8
    )


def test_wrong_checksum_is_refused_before_loading(tmp_path):
    target = tmp_path / "models" / "mobilefacenet" / "ms1m_foamliu.pt"
    target.parent.mkdir(parents=True)
    torch.save(MobileFaceNetMS1M().state_dict(), target)  # right keys, wrong bytes
    with pytest.raises(WeightsError, match="SHA-256"):
        load_pretrained("ms1m", tmp_path)
    assert sorted(p.name for p in target.parent.iterdir()) == ["ms1m_foamliu.pt"]  # nothing written beside it


def test_mismatched_keys_name_what_differs(tmp_path):
    state = MobileFaceNetMS1M().state_dict()
    state.pop("conv3.bias")
    state["extra.weight"] = torch.zeros(1)
    state["bn.weight"] = torch.zeros(7)
    with pytest.raises(
        WeightsError,
        match=r"1 missing \(conv3.bias\); 1 unexpected \(extra.weight\); "
        r"1 of another shape \(bn.weight\)",
    ):
        load_strict(MobileFaceNetMS1M(), state, "test weights")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="not a readable weights file"):
        read_state(tmp_path / "junk.pt")
    torch.save({"epoch": 3, "net_state_dict": MobileFaceNetCASIA().state_dict()}, tmp_path / "ckpt.pt")
    load_strict(MobileFaceNetCASIA(), read_state(tmp_path / "ckpt.pt"), "a training checkpoint")  # unwrapped


def test_pretrained_weights_load_strictly_when_present():
    if not (KEYS / "casia_xiaoccer.ckpt").exists():
        pytest.skip("shared data not available")
    m = load_pretrained("casia", SHARED)
    assert m.size == (112, 96) and not m.training


def test_surrogate_file_roundtrip_checksum_and_keys(tmp_path):
    from tenfold.studies.lowkey.recognizers import load_surrogates, save_surrogates

    torch.manual_seed(0)
    models = {"a": build("a", surrogate_spec()).eval()}
    path = save_surrogates(tmp_path / "s.pt", models, {"a": {"head": "arcface"}})
    back = load_surrogates(path)["a"]
    x = torch.rand(1, 3, 112, 112)
    assert torch.allclose(back(x), models["a"](x))
    with pytest.raises(WeightsError, match="no surrogate 'b'"):
        load_surrogates(path, ["b"])
    # a file replaced by other bytes: the checksum refuses it
    torch.save({"a": MobileFaceNetCASIA().state_dict()}, path)
    with pytest.raises(WeightsError, match="SHA-256 differs"):
        load_surrogates(path)
    # the checksum matches but the keys do not: strict loading refuses it
    from tenfold.components.data.sources import sha256_file

    manifest = json.loads(path.with_suffix(".json").read_text())
    path.with_suffix(".json").write_text(json.dumps({**manifest, "sha256": sha256_file(path)}))
    with pytest.raises(WeightsError, match="do not match the architecture"):
        load_surrogates(path)
    with pytest.raises(FileNotFoundError, match="lowkey_surrogates"):
        load_surrogates(tmp_path / "absent.pt")


def test_similarity_recovers_a_known_transform():
    ang, s, t = 0.3, 1.7, np.array([5.0, -3.0])
    rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    src = np.random.default_rng(0).normal(size=(5, 2)) * 20
    m = similarity(src, (s * rot @ src.T).T + t)
    assert np.allclose(m[:2, :2], s * rot, atol=1e-8) and np.allclose(m[:2, 2], t, atol=1e-8)


@pytest.mark.parametrize("size,template", [((56, 56), TEMPLATE_112 / 2), ((112, 96), TEMPLATE_112x96)])
def test_warp_puts_landmarks_on_the_template(size, template):
    """Bright dots at 5 landmarks of a 150x120 photo land on the model's template after alignment."""
    h, w = 150, 120
    pts = np.array([[45.0, 60], [78, 57], [61, 82], [49, 105], [76, 103]])
    img = np.zeros((1, h, w, 3), np.uint8)
    for x, y in pts.astype(int):
        img[0, y - 1 : y + 2, x - 1 : x + 2] = 255
    out = warp(to_tensor(img), torch.from_numpy(alignment_theta(pts, (h, w), size, template))[None], size)[0, 0]
    assert out.shape == size
    for rx, ry in template:
        patch = out[int(round(ry)) - 2 : int(round(ry)) + 3, int(round(rx)) - 2 : int(round(rx)) + 3]
        assert patch.max() > 0.4, (rx, ry)


def test_thetas_fall_back_to_a_centre_crop_without_landmarks():
    th = thetas([None], (120, 60), 32)
    img = torch.zeros(1, 3, 120, 60)
    img[:, :, 30:90] = 1.0  # the centred 60x60 square
    assert warp(img, th, 32).min() > 0.99


def test_rank_k_and_auc_on_constructed_embeddings():
    g = np.eye(3)
    probes = np.array([[1, 0.1, 0], [0.2, 0.1, 1.0], [0.9, 1.0, 0]])
    r = rank_k(g, np.arange(3), probes, np.array([0, 2, 0]), [1, 2])
    assert r[1].tolist() == [True, True, False] and r[2].all()
    emb = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]])
    assert verification_auc(emb, np.array([0, 0, 1, 1])) == 1.0
    assert verification_auc(emb, np.array([0, 1, 0, 1])) < 0.5
    with pytest.raises(ValueError, match="both"):
        verification_auc(emb, np.zeros(4, int))


def test_blur_preserves_constants_and_ssim_matches_scikit_image():
    from skimage.metrics import structural_similarity

    blur = GaussianBlur(7, 3.0)
    x = torch.full((1, 3, 16, 16), 0.4)
    assert torch.allclose(blur(x), x, atol=1e-6)
    rng = np.random.default_rng(0)
    a = rng.random((40, 36, 3))
    b = np.clip(a + 0.1 * rng.normal(size=a.shape), 0, 1)
    ref = structural_similarity(
        a, b, channel_axis=-1, data_range=1, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    t = lambda v: torch.tensor(v, dtype=torch.float32).permute(2, 0, 1)[None]  # noqa: E731
    assert ssim(t(a), t(b)).item() == pytest.approx(ref, abs=1e-4)
    assert ssim(t(a), t(a)).item() == pytest.approx(1.0, abs=1e-5)


def _toy_models():
    torch.manual_seed(0)
    return [build("t", surrogate_spec()).eval()]


PTS = np.array([[50.0, 60], [80, 60], [65, 78], [53, 95], [77, 95]])


def test_lowkey_moves_features_within_the_step_budget_and_snapshots_are_iterates():
    models = _toy_models()
    x = torch.rand(2, 3, 130, 130)
    cfg = LowKeyAttack(n_iters=4, lr=0.01, c_sim=0.05, step="sign")  # the step budget of signed steps
    lk = LowKey(models, cfg)
    adv, st = lk.protect(x, [PTS, PTS + 3], seed=1, snapshots=[2, 4])
    assert (adv - x).abs().max() <= cfg.n_iters * cfg.lr + cfg.init_noise + 1e-6
    assert adv.min() >= 0 and adv.max() <= 1 and torch.equal(st["snapshots"][4], adv)
    noise_only = lk.feature_distance(
        (x + 0.005).clamp(0, 1),
        torch.arange(2),
        lk.thetas([PTS, PTS + 3], (130, 130)),
        lk._features(x, torch.arange(2), lk.thetas([PTS, PTS + 3], (130, 130)), False),
    )
    assert (st["feature_distance"] > noise_only.numpy()).all()
    two, _ = LowKey(models, cfg.model_copy(update={"n_iters": 2})).protect(x, [PTS, PTS + 3], seed=1)
    assert torch.equal(st["snapshots"][2], two)  # the 2-step filter is the 2nd iterate of the 4-step run
    again, _ = lk.protect(x, [PTS, PTS + 3], seed=1)
    assert torch.equal(again, adv)  # deterministic for a seed


def test_lowkey_filters_every_face_of_a_photo_and_leaves_the_rest():
    models = _toy_models()
    x = torch.rand(1, 3, 130, 260)
    cfg = LowKeyAttack(n_iters=3, lr=0.01, init_noise=0.0)
    adv, st = LowKey(models, cfg).protect(x, [PTS, PTS + np.array([130.0, 0])], owner=[0, 0], seed=0)
    d = (adv - x).abs()[0].sum(0)
    assert d[40:110, 30:100].mean() > 0 and d[40:110, 160:230].mean() > 0  # both faces moved
    assert d[:, 120:140].sum() == 0 or d[:10].sum() == 0  # the far background keeps the original pixels
    assert len(st["feature_distance"]) == 2
    with pytest.raises(ValueError, match="owners"):
        LowKey(models, cfg).protect(x, [PTS], owner=[0, 0])


def test_footprint_box_and_alignment_jitter():
    th = torch.tensor([[[0.5, 0.0, 0.0], [0.0, 0.5, 0.0]]])
    assert footprint_box(th, (100, 200), pad=0) == (25, 75, 50, 150)
    gen = torch.Generator().manual_seed(0)
    assert torch.equal(jitter_thetas(th, 0.0, 0.0, gen), th)
    j = jitter_thetas(th.repeat(50, 1, 1), 0.05, 0.05, gen)
    assert (j - th).abs().max() <= 0.05 * 2 * 0.5 * 1.05 + 0.05 * 0.5 + 1e-6 and (j != th).any()


def test_params_reject_bad_values():
    assert isinstance(validate_section("lowkey", {}), LowKeyParams)
    with pytest.raises(ParamsError, match="lowkey.attack.n_itres"):
        validate_section("lowkey", {"attack": {"n_itres": 3}})
    with pytest.raises(ParamsError, match="never be attacked"):
        validate_section("lowkey", {"models": {"attack": ["ms1m", "casia"]}})
    with pytest.raises(ParamsError, match="unknown recognizer"):
        validate_section("lowkey", {"models": {"attack": ["ms1m", "ir152"]}})
    with pytest.raises(ParamsError, match="subtle_iters"):
        validate_section("lowkey", {"eval": {"subtle_iters": 80}})
    with pytest.raises(ParamsError, match="blur_kernel"):
        validate_section("lowkey", {"attack": {"blur_kernel": 4}})
    p = validate_section("lowkey", {"attack": {"lr": 0.003}, "sweep": {"points": [{"c_sim": 0.5}]}})
    a = p.attack_at(p.sweep.points[0])
    assert (a.c_sim, a.lr) == (0.5, 0.003)
    assert p.attackers_at(p.sweep.points[0]) == p.models.attack == p.attackers_at()
    p = validate_section("lowkey", {"sweep": {"points": [{"models": ["scratch_arcface"], "step": "l2"}]}})
    assert p.attackers_at(p.sweep.points[0]) == ["scratch_arcface"] and p.attack_at(p.sweep.points[0]).step == "l2"
    with pytest.raises(ParamsError, match=r"sweep.points\[0\].models: \['casia'\] cannot attack"):
        validate_section("lowkey", {"sweep": {"points": [{"models": ["casia"]}]}})
    with pytest.raises(ParamsError, match="cannot attack"):
        validate_section("lowkey", {"sweep": {"points": [{"c_sim": 1.0}, {"models": ["ir152"]}]}})
    with pytest.raises(ParamsError, match="step"):
        validate_section("lowkey", {"attack": {"step": "adam"}})


def test_l2_steps_have_the_sign_steps_rms_and_follow_the_gradient():
    """`step: l2` moves the box by the same root-mean-square as a signed step, in proportion to the gradient, so a
    pixel with a 3x larger gradient moves 3x more (a signed step moves both equally)."""
    g = torch.zeros(2, 3, 20, 20)
    g[0, :, 5:15, 5:15] = 1.0
    g[0, 0, 6, 6] = 3.0
    g[1, :, 5:15, 5:15] = -0.01
    box = (5, 15, 5, 15)
    d = step_direction(g, "l2", box)
    rms = d[..., 5:15, 5:15].pow(2).flatten(1).mean(1).sqrt()
    assert torch.allclose(rms, torch.ones(2)) and d[0, 0, 6, 6] / d[0, 0, 7, 7] == pytest.approx(3.0)
    assert torch.equal(step_direction(g, "sign", box), g.sign()) and d[1, 0, 5, 5] < 0
    models = _toy_models()
    x = torch.rand(1, 3, 130, 130)
    cfg = LowKeyAttack(n_iters=3, lr=0.01, c_sim=0.05, init_noise=0.0, step="l2")
    adv, st = LowKey(models, cfg).protect(x, [PTS], seed=1)
    signed, _ = LowKey(models, cfg.model_copy(update={"step": "sign"})).protect(x, [PTS], seed=1)
    moved, moved_sign = (adv - x).abs(), (signed - x).abs()
    assert moved.max() > moved_sign.max() and st["feature_distance"][0] > 0  # concentrated, not uniform


def test_split_keeps_identities_disjoint_and_counts_right():
    from tenfold.studies.lowkey.data import split
    from tenfold.studies.lowkey.params import LowKeyData

    ids = np.repeat(np.arange(20), 8)
    found = np.ones(len(ids), bool)
    found[::9] = False
    d = LowKeyData(
        eval_identities=5, min_photos=4, probes_per_identity=2, distractors=4, auc_photos=4, train_photos_max=3
    )
    sp = split(ids, found, d, seed=3)
    ev, dis, tr = set(sp.eval_ids), set(sp.distractor_ids), set(sp.train_ids)
    assert len(ev) == 5 and len(dis) == 4 and not (ev & dis or ev & tr or dis & tr) and len(tr) == 11
    assert len(sp.gallery) == 5 + 4 and len(sp.probes) == 10 and found[np.r_[sp.gallery, sp.probes, sp.train]].all()
    assert not set(sp.gallery) & set(sp.probes) and set(ids[sp.probes]) == ev and set(ids[sp.train]) == tr
    assert all((ids[sp.train] == i).sum() <= 3 for i in tr)
    assert split(ids, found, d, seed=3).probes.tolist() == sp.probes.tolist()  # same seed, same split
    with pytest.raises(ValueError, match="eval_identities=50"):
        split(ids, found, d.model_copy(update={"eval_identities": 50}), seed=0)


def test_att_split_and_face_region_quality():
    from tenfold.studies.lowkey.data import att_split, face_boxes, quality
    from tenfold.studies.lowkey.params import LowKeyAtt

    subjects, numbers = np.repeat(np.arange(3), 4), np.tile(np.arange(1, 5), 3)
    found = np.ones(12, bool)
    found[1] = False
    g, q = att_split(subjects, numbers, found, LowKeyAtt(probes_per_subject=2))
    assert numbers[g].tolist() == [1, 1, 1] and q.tolist() == [2, 3, 5, 6, 9, 10]
    assert face_boxes(np.array([[10.2, 5.0, 40.9, 30.0], [np.nan] * 4]), (50, 60)).tolist() == [
        [5, 30, 10, 41],
        [0, 50, 0, 60],
    ]
    rng = np.random.default_rng(0)
    clean = rng.integers(0, 255, (1, 64, 64, 3), dtype=np.uint8)
    filt = clean.copy()
    filt[0, 16:48, 16:48] = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)  # only the face changes
    r = quality(clean, filt, np.array([[16.0, 16, 48, 48]]))
    assert r["face_ssim"][0] < r["ssim"][0] < 1 and np.isfinite(r["psnr"]).all()
    assert quality(clean, clean)["psnr"][0] == np.inf


def test_web_decode_errors_are_clear():
    import io

    from PIL import Image

    from tenfold.studies.lowkey.params import LowKeyWeb
    from tenfold.studies.lowkey.web import Protector, UploadError

    prot = Protector(_toy_models(), LowKeyAttack(n_iters=2), LowKeyWeb(max_bytes=200_000, max_side=128))
    for data, status, msg in (
        (b"hello, this is text", 400, "not an image"),
        (b"\0" * 300_000, 413, "too large"),
        (b"", 400, "empty"),
    ):
        with pytest.raises(UploadError, match=msg) as e:
            prot.decode(data)
        assert e.value.status == status
    buf = io.BytesIO()
    Image.fromarray(np.full((80, 80, 3), 128, np.uint8)).save(buf, format="PNG")
    with pytest.raises(UploadError, match="no face") as e:
        prot.decode(buf.getvalue())
    assert e.value.status == 422


def test_web_downscales_and_protects_a_face_photo():
    import io

    from PIL import Image
    from skimage.data import astronaut

    from tenfold.studies.lowkey.params import LowKeyWeb
    from tenfold.studies.lowkey.web import Protector
    from tenfold.studies.lowkey.web import png as web_png

    prot = Protector(_toy_models(), LowKeyAttack(n_iters=2), LowKeyWeb(max_bytes=2_000_000, max_side=256))
    buf = io.BytesIO()
    Image.fromarray(astronaut()).save(buf, format="PNG")  # 512x512
    img, points, boxes = prot.decode(buf.getvalue())
    assert img.shape == (256, 256, 3) and len(points) >= 1 and points[0].shape == (5, 2)
    assert len(boxes) == len(points) and all(0 <= b[0] < b[2] <= 256 and 0 <= b[1] < b[3] <= 256 for b in boxes)
    seen = []
    out = prot.protect(img, points, progress=lambda k, n: seen.append((k, n)))
    png = web_png(out)
    assert png[:4] == b"\x89PNG" and np.array_equal(np.asarray(Image.open(io.BytesIO(png))), out)
    assert out.shape == img.shape and out.dtype == np.uint8 and seen[-1] == (2, 2) and not np.array_equal(out, img)


@pytest.mark.slow  # imports the Prefect task module: seconds
def test_filter_task_shows_a_bar_of_attack_steps(capsys, monkeypatch):
    import logging

    import tasks.lowkey as T

    monkeypatch.setattr(T, "get_run_logger", lambda: logging.getLogger("test"))  # no Prefect run here
    monkeypatch.setenv("TQDM_DISABLE", "1")  # as on a CI runner: asked for explicitly, the bar still shows
    photos = (np.random.default_rng(0).random((2, 130, 130, 3)) * 255).astype(np.uint8)
    cfg = LowKeyAttack(n_iters=3, lr=0.01, n_starts=2)
    out = T.protect.fn(_toy_models(), photos, [PTS, PTS + 2], cfg, 1, [3], show_progress=True, label="filter test")
    err = capsys.readouterr().err
    assert "filter test" in err and "/6 " in err  # a bar of 2 starts x 3 steps
    quiet = T.protect.fn(_toy_models(), photos, [PTS, PTS + 2], cfg, 1, [3])
    assert capsys.readouterr().err == ""
    assert np.array_equal(out["photos"][3], quiet["photos"][3])


def test_loading_recognizers_leaves_the_global_rng_alone(tmp_path):
    """Loaders build the net (a random init) and overwrite its weights: under `isolated`, so a concurrent task's
    `seeded` init (the fairness nets beside the embedding baseline) is not disturbed."""
    from tenfold.studies.lowkey.recognizers import load_surrogates, save_surrogates

    path = save_surrogates(tmp_path / "s.pt", {"a": build("a", surrogate_spec()).eval()}, {"a": {"head": "arcface"}})
    before = torch.random.get_rng_state()
    load_surrogates(path)
    if (KEYS / "casia_xiaoccer.ckpt").exists():
        load_pretrained("casia", SHARED)
    assert torch.equal(torch.random.get_rng_state(), before)
