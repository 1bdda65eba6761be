"""UTKFace for the fairness study: decode the offline faces once (stage `build_utkface`), then cut seeded,
stratified face tasks out of the arrays.

    build(src, out_dir)   ../shared/data/faces/utkface64 (labels.csv + images/) -> <out_dir>/faces.npz
                          (x uint8 (N, 3, 64, 64), age, gender, race, file) and manifest.json. Every label row is
                          checked before any image is decoded: a row that does not parse, labels that disagree
                          with the file name, a duplicated file or a missing image fail with the row named.
    load_task(...)        one task as a `FairData`: y, s, average-pooled images, train/val/test splits stratified
                          by (y, s); a (y, s) cell with no face in a split fails before training, naming it.

Tasks (`TASKS`): `age_gender` y = age >= threshold, s = female; `gender_race` y = female, s = 1 for the races of
`race_s1` (0 for `race_s0`; faces of other races are left out).
"""

from __future__ import annotations

import csv
import json
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from tenfold.core.errors import TenfoldError
from tenfold.studies.fairness.data import FairData, check_cells

RACES = ("White", "Black", "Asian", "Indian", "Others")
SIDE = 64
NPZ = "faces.npz"


class FaceDataError(TenfoldError, ValueError):
    """The face labels or images are malformed (the message names the row, file or group)."""


@dataclass(frozen=True)
class LabelRow:
    line: int  # line number in labels.csv (the header is line 1)
    file: str
    age: int
    gender: int
    race: int


def parse_labels(path: str | Path) -> list[LabelRow]:
    """Every row of labels.csv (`file,age,gender,race`), checked: integers in range (age 0..116, gender 0/1, race
    0..4), agreeing with the `<age>_<gender>_<race>_...` file name, each file once. The first bad row raises
    FaceDataError naming its line."""
    path = Path(path)
    rows, seen = [], {}
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or [h.strip() for h in header] != ["file", "age", "gender", "race"]:
            raise FaceDataError(f"{path}: line 1 must be the header file,age,gender,race (got {header})")
        for line, rec in enumerate(reader, start=2):
            if not rec or all(not c.strip() for c in rec):
                continue
            where = f"{path}: line {line} ({','.join(rec)!r})"
            if len(rec) != 4:
                raise FaceDataError(f"{where}: expected 4 fields file,age,gender,race, got {len(rec)}")
            name = rec[0].strip()
            try:
                age, gender, race = (int(c) for c in rec[1:])
            except ValueError:
                raise FaceDataError(f"{where}: age, gender and race must be integers") from None
            if not (0 <= age <= 116 and gender in (0, 1) and 0 <= race <= 4):
                raise FaceDataError(f"{where}: out of range (age 0..116, gender 0/1, race 0..4)")
            parts = name.split("_")
            if not name or len(parts) < 4 or parts[:3] != [str(age), str(gender), str(race)]:
                raise FaceDataError(
                    f"{where}: labels disagree with the file name (expected "
                    f"<age>_<gender>_<race>_... = {age}_{gender}_{race}_...)"
                )
            if name in seen:
                raise FaceDataError(f"{where}: file listed twice (also line {seen[name]})")
            seen[name] = line
            rows.append(LabelRow(line, name, age, gender, race))
    if not rows:
        raise FaceDataError(f"{path}: no label rows")
    return rows


def build(src: str | Path, out_dir: str | Path, limit: int | None = None, seed: int = 0) -> dict:
    """Decode the faces of `src` (labels.csv, images/) into `<out_dir>/faces.npz` + manifest.json; `limit` keeps a
    seeded random subset of that many rows (tests). Labels and file presence are checked before decoding."""
    from PIL import Image

    from tenfold.core.runtime import atomic_savez, atomic_write_json, md5_file

    src, out_dir = Path(src), Path(out_dir)
    rows = parse_labels(src / "labels.csv")
    if limit is not None and limit < len(rows):
        keep = np.sort(np.random.default_rng(seed).choice(len(rows), limit, replace=False))
        rows = [rows[i] for i in keep]
    missing = [r for r in rows if not (src / "images" / r.file).is_file()]
    if missing:
        r = missing[0]
        raise FaceDataError(
            f"{src / 'labels.csv'}: line {r.line}: image {src / 'images' / r.file} is missing"
            f"{f' ({len(missing)} missing in all)' if len(missing) > 1 else ''}"
        )
    x = np.empty((len(rows), 3, SIDE, SIDE), np.uint8)
    for i, r in enumerate(rows):
        try:
            with Image.open(src / "images" / r.file) as im:
                a = np.asarray(
                    im.convert("RGB").resize((SIDE, SIDE), Image.BICUBIC)
                    if im.size != (SIDE, SIDE)
                    else im.convert("RGB")
                )
        except OSError as e:
            raise FaceDataError(f"{src / 'labels.csv'}: line {r.line}: image {r.file} does not decode ({e})") from None
        x[i] = a.transpose(2, 0, 1)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_savez(
        out_dir / NPZ,
        compress=False,
        x=x,
        age=np.array([r.age for r in rows], np.int16),
        gender=np.array([r.gender for r in rows], np.int8),
        race=np.array([r.race for r in rows], np.int8),
        file=np.array([r.file for r in rows]),
    )
    gender = np.array([r.gender for r in rows])
    race = np.array([r.race for r in rows])
    manifest = {
        "n": len(rows),
        "source": str(src),
        "labels_md5": md5_file(src / "labels.csv"),
        "limit": limit,
        "side": SIDE,
        "female": int(gender.sum()),
        "male": int((gender == 0).sum()),
        "races": {name: int((race == k).sum()) for k, name in enumerate(RACES)},
    }
    atomic_write_json(out_dir / "manifest.json", manifest)
    return manifest


_LOCK = threading.Lock()


def _arrays(path: str, size: int) -> dict:
    """faces.npz read once per process (per file version), images pooled to size x size and scaled to about
    [-2, 2] (float32)."""
    p = Path(path)
    stamp = (p.stat().st_mtime_ns, p.stat().st_size) if p.exists() else None
    with _LOCK:  # tasks loading two face tasks at once share one read
        return _read_arrays(path, size, stamp)


@lru_cache(maxsize=2)
def _read_arrays(path: str, size: int, stamp) -> dict:
    from tenfold.core.artifacts import load_npz

    z = load_npz(path, ["x", "age", "gender", "race"])
    f = SIDE // size
    x = z["x"]
    out = np.empty((len(x), 3, size, size), np.float32)
    for i in range(0, len(x), 2048):  # chunks keep the float copy of 23k faces small
        a = x[i : i + 2048].astype(np.float32) / 255.0
        out[i : i + 2048] = (a.reshape(len(a), 3, size, f, size, f).mean((3, 5)) - 0.5) / 0.25
    return {
        "x": out,
        "age": z["age"].astype(np.int64),
        "gender": z["gender"].astype(np.int64),
        "race": z["race"].astype(np.int64),
    }


def task_labels(
    task: str,
    age: np.ndarray,
    gender: np.ndarray,
    race: np.ndarray,
    age_threshold: int = 40,
    race_s0=(0,),
    race_s1=(1, 2, 3, 4),
) -> tuple[np.ndarray, np.ndarray, np.ndarray, str, str]:
    """(rows kept, y, s, target name, group name) of a face task."""
    if task == "age_gender":
        keep = np.arange(len(age))
        return (
            keep,
            (age >= age_threshold).astype(np.int64),
            gender.astype(np.int64),
            f"age >= {age_threshold}",
            "gender (1 = female)",
        )
    if task == "gender_race":
        s1, s0 = np.isin(race, list(race_s1)), np.isin(race, list(race_s0))
        keep = np.flatnonzero(s0 | s1)
        names = lambda ks: "/".join(RACES[k] for k in ks)  # noqa: E731
        return (
            keep,
            gender[keep].astype(np.int64),
            s1[keep].astype(np.int64),
            "gender (1 = female)",
            f"race (1 = {names(race_s1)}, 0 = {names(race_s0)})",
        )
    raise ValueError(f"unknown face task {task!r} (age_gender, gender_race)")


def stratified_order(y: np.ndarray, s: np.ndarray, seed: int) -> np.ndarray:
    """A seeded order of the rows whose every prefix is stratified by the (y, s) cell: each cell is shuffled and
    its i-th member placed at fractional position (i + 0.5) / cell size."""
    rng = np.random.default_rng(seed)
    idx, key = [], []
    for cell in sorted(set(zip(y.tolist(), s.tolist()))):
        members = rng.permutation(np.flatnonzero((y == cell[0]) & (s == cell[1])))
        idx.append(members)
        key.append((np.arange(len(members)) + 0.5) / len(members))
    idx, key = np.concatenate(idx), np.concatenate(key)
    return idx[np.argsort(key, kind="stable")]


def split_task(
    y: np.ndarray, s: np.ndarray, seed: int, n_train: int, n_val: int, n_test: int, name: str = "faces"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, val, test) row indices: the first n_test of a stratified order are the test set, the next n_val the
    held-out set, and the first n_train of the rest the training set (so training sets of different sizes are
    nested and share the test set). Too few rows fail with the numbers."""
    if n_test + n_val + n_train > len(y):
        raise FaceDataError(
            f"fairness {name}: {len(y)} faces cannot give n_test {n_test} + n_val {n_val} + "
            f"n_train {n_train}; lower fairness.faces.n_train / curves.sizes"
        )
    order = stratified_order(y, s, seed)
    return order[n_test + n_val : n_test + n_val + n_train], order[n_test : n_test + n_val], order[:n_test]


def load_task(
    npz_dir: str | Path,
    task: str,
    seed: int,
    size: int = 32,
    n_train: int = 1000,
    n_val: int = 500,
    n_test: int = 4000,
    age_threshold: int = 40,
    race_s0=(0,),
    race_s1=(1, 2, 3, 4),
) -> FairData:
    """Face task `task` from the build's faces.npz as a FairData named `utk_<task>` with a held-out split."""
    path = Path(npz_dir) / NPZ
    z = _arrays(str(path), size)
    keep, y, s, target, group = task_labels(
        task, z["age"], z["gender"], z["race"], age_threshold, tuple(race_s0), tuple(race_s1)
    )
    name = f"utk_{task}"
    tr, va, te = split_task(y, s, seed, n_train, n_val, n_test, name)
    x = z["x"]
    man = read_manifest(npz_dir)
    source = (
        f"UTKFace 64x64 ({path}: {man.get('n', len(z['age']))} faces, labels.csv md5 "
        f"{str(man.get('labels_md5', '?'))[:8]}), pooled to {size}x{size}"
    )
    data = FairData(
        name,
        x[keep[tr]],
        y[tr],
        s[tr],
        x[keep[te]],
        y[te],
        s[te],
        source,
        target,
        group,
        x_val=x[keep[va]],
        y_val=y[va],
        s_val=s[va],
        raw_path=str(path),
        raw_rows={"train": keep[tr], "val": keep[va], "test": keep[te]},
    )
    check_cells(data)
    return data


def raw_faces(data, split: str) -> np.ndarray:
    """The 64x64 uint8 faces (N, 3, 64, 64) of one split of a face task, read from the build's faces.npz."""
    if data.raw_path is None or data.raw_rows is None:
        raise FaceDataError(f"fairness {data.name}: not a face task of the build (no faces.npz rows)")
    p = Path(data.raw_path)
    with _LOCK:
        x = _read_raw(str(p), (p.stat().st_mtime_ns, p.stat().st_size))
    return x[data.raw_rows[split]]


@lru_cache(maxsize=1)
def _read_raw(path: str, stamp) -> np.ndarray:
    from tenfold.core.artifacts import load_npz

    return load_npz(path, ["x"])["x"]


def read_manifest(npz_dir: str | Path) -> dict:
    p = Path(npz_dir) / "manifest.json"
    return json.loads(p.read_text()) if p.exists() else {}
