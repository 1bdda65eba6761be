import numpy as np
import pytest

from tenfold.studies.maze.dataset import MazeDataError, build, load


def test_roundtrip_and_byte_reproducible(tmp_path):
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    build(a, 20, 7, 1, seed=5)
    build(b, 20, 7, 1, seed=5)
    assert a.read_bytes() == b.read_bytes()  # same seed -> same md5 (DVC sees no change)
    codes, targets, meta = load(a, expect_size=7, expect_scale=1)
    assert codes.shape == (20, 11, 11) and meta["seed"] == 5


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(MazeDataError, match="not found.*dvc repro build_mazes"):
        load(tmp_path / "nope.npz")


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_file_is_a_clear_error(tmp_path, damage):
    p = tmp_path / "m.npz"
    build(p, 10, 5, 1, seed=0)
    raw = p.read_bytes()
    p.write_bytes(raw[: len(raw) // 2] if damage == "truncate" else b"not a zip file at all")
    with pytest.raises(MazeDataError, match="corrupt or truncated"):
        load(p)


def test_inconsistent_contents_are_rejected(tmp_path):
    p = tmp_path / "m.npz"
    build(p, 10, 5, 1, seed=0)
    with pytest.raises(MazeDataError, match="size 5 != expected 9"):
        load(p, expect_size=9)
    # a path through a wall
    import json

    from tenfold.core.runtime import atomic_savez

    with np.load(p) as z:
        codes, targets, meta = z["codes"].copy(), z["targets"].copy(), str(z["meta"])
    targets[:, 0, 0] = 1
    atomic_savez(p, codes=codes, targets=targets, meta=np.array(meta))
    with pytest.raises(MazeDataError, match="path crosses a wall"):
        load(p)
    m = json.loads(meta)
    m["count"] = 99
    atomic_savez(p, codes=codes, targets=targets * 0, meta=np.array(json.dumps(m)))
    with pytest.raises(MazeDataError, match="metadata says 99"):
        load(p)
