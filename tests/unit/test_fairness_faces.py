"""UTKFace for the fairness study: the build stage's checks (bad rows, missing images), the face tasks' seeded,
stratified, nested splits, a group with no face in a split, and the project's fairness metrics against fairlearn's
on the real faces."""

import numpy as np
import pytest
import torch

from tenfold.components.data.sources import get, shared_root
from tenfold.core.runtime import atomic_savez
from tenfold.studies.fairness import faces
from tenfold.studies.fairness.data import EmptyGroup

ROOT = faces.Path(__file__).resolve().parents[2]
SHARED = shared_root("../shared/data", ROOT) / get("utkface64").offline  # via the data-sources table


def _folder(root, rows, missing=()):
    """A UTKFace-like folder: labels.csv with `rows` (lists of strings) and a 64x64 JPEG per file (each a flat
    colour that encodes its row index), except the files in `missing`."""
    from PIL import Image

    (root / "images").mkdir(parents=True)
    (root / "labels.csv").write_text("file,age,gender,race\n" + "".join(",".join(r) + "\n" for r in rows))
    for i, r in enumerate(rows):
        if r[0] not in missing:
            Image.new("RGB", (64, 64), (10 * i, 255 - 10 * i, 100)).save(root / "images" / r[0], quality=95)
    return root


def _row(i, age, gender, race):
    return [f"{age}_{gender}_{race}_2017011{i:08d}.jpg.chip.jpg", str(age), str(gender), str(race)]


def test_build_decodes_every_face_with_its_labels(tmp_path):
    rows = [_row(i, 20 + 7 * i, i % 2, i % 5) for i in range(12)]
    src = _folder(tmp_path / "src", rows)
    man = faces.build(src, tmp_path / "out")
    z = np.load(tmp_path / "out" / faces.NPZ)
    assert z["x"].shape == (12, 3, 64, 64) and z["x"].dtype == np.uint8
    assert list(z["age"]) == [20 + 7 * i for i in range(12)] and list(z["gender"]) == [i % 2 for i in range(12)]
    assert list(z["race"]) == [i % 5 for i in range(12)] and list(z["file"]) == [r[0] for r in rows]
    assert [int(v) for v in z["x"][:, 0].mean((1, 2)).round()] == pytest.approx([10 * i for i in range(12)], abs=2)
    assert man["n"] == 12 and man["female"] == 6 and sum(man["races"].values()) == 12
    sub = faces.build(src, tmp_path / "sub", limit=5, seed=3)  # a seeded subset
    assert sub["n"] == 5 and faces.build(src, tmp_path / "sub2", limit=5, seed=3)["n"] == 5
    assert list(np.load(tmp_path / "sub" / faces.NPZ)["file"]) == list(np.load(tmp_path / "sub2" / faces.NPZ)["file"])


@pytest.mark.parametrize(
    "bad,match",
    [
        (["x_0_0_1.jpg.chip.jpg", "x", "0", "0"], r"line 4 .*must be integers"),
        (["30_0_0_1.jpg.chip.jpg", "30", "0"], r"line 4 .*expected 4 fields"),
        (["30_0_7_1.jpg.chip.jpg", "30", "0", "7"], r"line 4 .*out of range"),
        (["30_1_0_1.jpg.chip.jpg", "30", "0", "0"], r"line 4 .*disagree with the file name"),
    ],
)
def test_a_label_row_that_does_not_parse_fails_naming_the_row(tmp_path, bad, match):
    rows = [_row(0, 25, 0, 0), _row(1, 50, 1, 1), bad]
    src = _folder(tmp_path / "src", rows[:2])
    (src / "labels.csv").write_text("file,age,gender,race\n" + "".join(",".join(r) + "\n" for r in rows))
    with pytest.raises(faces.FaceDataError, match=match):
        faces.build(src, tmp_path / "out")
    assert not (tmp_path / "out" / faces.NPZ).exists()  # nothing written before the check


def test_a_missing_image_or_a_duplicate_row_fails_naming_it(tmp_path):
    rows = [_row(i, 20 + i, i % 2, 0) for i in range(4)]
    src = _folder(tmp_path / "src", rows, missing=(rows[2][0],))
    with pytest.raises(faces.FaceDataError, match=rf"line 4: image .*{rows[2][0]} is missing"):
        faces.build(src, tmp_path / "out")
    dup = _folder(tmp_path / "dup", rows[:2])
    (dup / "labels.csv").write_text("file,age,gender,race\n" + "".join(",".join(r) + "\n" for r in rows[:2] + rows[:1]))
    with pytest.raises(faces.FaceDataError, match="line 4 .*listed twice .*line 2"):
        faces.build(dup, tmp_path / "out")
    (dup / "labels.csv").write_text("name,age\n")
    with pytest.raises(faces.FaceDataError, match="header"):
        faces.parse_labels(dup / "labels.csv")


def _fake_npz(path, n=2400, seed=0):
    rng = np.random.default_rng(seed)
    age = rng.integers(1, 90, n)
    gender = rng.integers(0, 2, n)
    race = rng.integers(0, 5, n)
    x = rng.integers(0, 256, (n, 3, 64, 64), dtype=np.uint8)
    atomic_savez(
        path / faces.NPZ,
        compress=False,
        x=x,
        age=age.astype(np.int16),
        gender=gender.astype(np.int8),
        race=race.astype(np.int8),
        file=np.array([f"f{i}" for i in range(n)]),
    )
    return age, gender, race


def test_face_tasks_split_seeded_stratified_and_nested(tmp_path):
    age, gender, race = _fake_npz(tmp_path)
    small = faces.load_task(tmp_path, "age_gender", 7, 16, 300, 200, 900)
    big = faces.load_task(tmp_path, "age_gender", 7, 16, 600, 200, 900)
    assert (
        small.x_train.shape == (300, 3, 16, 16) and small.x_test.shape == (900, 3, 16, 16) and len(small.y_val) == 200
    )
    assert np.array_equal(small.x_test, big.x_test) and np.array_equal(small.x_val, big.x_val)
    assert np.array_equal(big.x_train[:300], small.x_train)  # nested training sets
    y, s = (age >= 40).astype(int), gender.astype(int)
    for split in ("train", "val", "test"):  # every split keeps the (y, s) proportions
        ys, ss = getattr(small, f"y_{split}"), getattr(small, f"s_{split}")
        for cell in [(0, 0), (0, 1), (1, 0), (1, 1)]:
            share = ((y == cell[0]) & (s == cell[1])).mean()
            assert abs(((ys == cell[0]) & (ss == cell[1])).mean() - share) < 2.5 / len(ys) + 1e-9
    train_ids = {r.tobytes() for r in small.x_train}
    assert not train_ids & {r.tobytes() for r in small.x_test} and not train_ids & {r.tobytes() for r in small.x_val}
    again = faces.load_task(tmp_path, "age_gender", 7, 16, 300, 200, 900)
    assert np.array_equal(again.x_train, small.x_train)
    other = faces.load_task(tmp_path, "age_gender", 8, 16, 300, 200, 900)
    assert not np.array_equal(other.x_test, small.x_test)
    gr = faces.load_task(tmp_path, "gender_race", 7, 32, 100, 50, 300, race_s0=(0,), race_s1=(2,))
    assert gr.x_train.shape[-1] == 32 and "Asian" in gr.group and "White" in gr.group
    assert small.x_train.dtype == np.float32 and np.abs(small.x_train).max() <= 2.0  # pixels scaled to [-2, 2]
    # each pooled pixel is the mean of its 4x4 block of the 64x64 face (16 = 64 / 4), scaled
    z = np.load(tmp_path / faces.NPZ)
    blocks = (z["x"].astype(np.float32) / 255).reshape(len(z["x"]), 3, 16, 4, 16, 4).mean((3, 5))
    first = np.flatnonzero(np.all(np.isclose((blocks - 0.5) / 0.25, small.x_test[0], atol=1e-5), axis=(1, 2, 3)))
    assert len(first) == 1
    with pytest.raises(faces.FaceDataError, match="cannot give n_test"):
        faces.load_task(tmp_path, "age_gender", 7, 16, 2000, 200, 900)


def test_a_group_with_no_face_in_a_split_fails_before_training(tmp_path):
    n = 1200
    rng = np.random.default_rng(0)
    gender = rng.integers(0, 2, n)
    age = np.where(gender == 1, 20, rng.integers(20, 80, n))  # no woman is 40 or older: cell (y=1, s=1) is empty
    atomic_savez(
        tmp_path / faces.NPZ,
        compress=False,
        x=np.zeros((n, 3, 64, 64), np.uint8),
        age=age.astype(np.int16),
        gender=gender.astype(np.int8),
        race=np.zeros(n, np.int8),
        file=np.array([str(i) for i in range(n)]),
    )
    with pytest.raises(
        EmptyGroup,
        match=r"utk_age_gender: the train split has no example of group s=1 "
        r"\(gender \(1 = female\)\) with y=1 \(age >= 40\)",
    ):
        faces.load_task(tmp_path, "age_gender", 0, 16, 300, 100, 300)


def test_missing_build_output_names_the_stage_file(tmp_path):
    from tenfold.core.errors import ArtifactError

    with pytest.raises(ArtifactError, match="faces.npz: not found"):
        faces.load_task(tmp_path, "age_gender", 0)


@pytest.mark.skipif(not (SHARED / "labels.csv").exists(), reason="offline UTKFace not present")
def test_metrics_match_fairlearn_on_the_face_data():
    """Real faces, real labels (y = age >= 40, s = female): predictions of a logistic regression on 8x8 pixels;
    the project's gaps and rates equal fairlearn's."""
    from fairlearn.metrics import (
        MetricFrame,
        demographic_parity_difference,
        equal_opportunity_difference,
        equalized_odds_difference,
        selection_rate,
    )
    from PIL import Image
    from sklearn.linear_model import LogisticRegression

    from tenfold.studies.fairness.metrics import report

    rows = faces.parse_labels(SHARED / "labels.csv")
    pick = np.random.default_rng(0).choice(len(rows), 600, replace=False)
    x = np.stack(
        [
            np.asarray(Image.open(SHARED / "images" / rows[i].file).convert("L").resize((8, 8)), np.float32).ravel()
            / 255
            for i in pick
        ]
    )
    y = np.array([rows[i].age >= 40 for i in pick], int)
    s = np.array([rows[i].gender for i in pick], int)
    pred = LogisticRegression(max_iter=2000).fit(x[:300], y[:300]).predict(x[300:])
    yt, st = y[300:], s[300:]
    ours = report(pred, yt, st)
    assert 0.55 < ours["acc"] < 0.95 and ours["gap_dp"] > 0  # a real, imperfect, group-dependent classifier
    assert ours["gap_dp"] == pytest.approx(demographic_parity_difference(yt, pred, sensitive_features=st), abs=1e-12)
    assert ours["gap_eo"] == pytest.approx(equalized_odds_difference(yt, pred, sensitive_features=st), abs=1e-12)
    assert ours["gap_eopp"] == pytest.approx(equal_opportunity_difference(yt, pred, sensitive_features=st), abs=1e-12)
    rates = MetricFrame(metrics=selection_rate, y_true=yt, y_pred=pred, sensitive_features=st).by_group
    assert ours["pos"] == pytest.approx(pred.mean()) and ours["gap_dp"] == pytest.approx(abs(rates[0] - rates[1]))


class _Tiny(torch.nn.Module):
    def forward(self, x):
        return torch.nn.functional.adaptive_avg_pool2d(x, 2).flatten(1)  # 12-d: mean colour of each quadrant


def test_embeddings_replace_each_face_by_the_recognizers_view_of_its_64x64_original(tmp_path):
    """The baseline's embedded task: same labels, groups and splits; each row is the model's L2-normalised
    embedding of that face's 64x64 original (resized to the model's input), not of the pooled training input."""
    from tenfold.components.models.facemodels import FaceModel
    from tenfold.studies.fairness.embed import embed

    _fake_npz(tmp_path, n=1200)
    data = faces.load_task(tmp_path, "age_gender", 3, 16, 200, 100, 400)
    model = FaceModel("tiny", _Tiny(), (20, 20), np.zeros((5, 2)), (0.5,) * 3, (0.25,) * 3)
    e = embed(data, model, batch=64)
    assert e.name == "utk_age_gender+tiny" and e.x_train.shape == (200, 12) and e.x_val.shape == (100, 12)
    assert np.allclose(np.linalg.norm(e.x_test, axis=1), 1, atol=1e-5) and not e.is_image
    for k in ("y_train", "s_train", "y_val", "s_val", "y_test", "s_test"):
        assert np.array_equal(getattr(e, k), getattr(data, k))
    raw = faces.raw_faces(data, "test")
    pooled = (raw.astype(np.float32) / 255).reshape(400, 3, 16, 4, 16, 4).mean((3, 5))
    assert np.allclose((pooled - 0.5) / 0.25, data.x_test, atol=1e-5)  # the raw rows are the test faces
    x = torch.nn.functional.interpolate(torch.from_numpy(raw[:1]).float() / 255, size=(20, 20), mode="bilinear")
    assert np.allclose(e.x_test[0], model(x).numpy()[0], atol=1e-6)
    with pytest.raises(faces.FaceDataError, match="not a face task"):
        faces.raw_faces(e, "test")


def test_ms1m_embeddings_of_real_faces_carry_what_the_baseline_needs(tmp_path):
    """The real MS1M MobileFaceNet on 600 real UTKFace faces: a linear probe on its embeddings tells gender (the
    sensitive attribute) and age >= 40 (the label) far above chance, as fixed features for a baseline must."""
    from sklearn.linear_model import LogisticRegression

    from tenfold.components.models.facemodels import load_pretrained
    from tenfold.studies.fairness.embed import embed

    faces.build(SHARED, tmp_path, limit=700, seed=0)
    data = faces.load_task(tmp_path, "age_gender", 0, 16, 300, 50, 300)
    e = embed(data, load_pretrained("ms1m", shared_root("../shared/data", ROOT)))
    assert e.x_train.shape == (300, 128)
    for target in ("s", "y"):
        lr = LogisticRegression(max_iter=2000).fit(e.x_train, getattr(e, f"{target}_train"))
        acc = lr.score(e.x_test, getattr(e, f"{target}_test"))
        base = max(getattr(e, f"{target}_test").mean(), 1 - getattr(e, f"{target}_test").mean())
        assert acc > base + 0.1, (target, acc, base)
