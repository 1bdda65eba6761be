"""A truncated or corrupt stage output fails with one line naming the file (parquet, npz, weights)."""

import numpy as np
import pandas as pd
import pytest
import torch

from tenfold.core.artifacts import load_npz, read_parquet, torch_load
from tenfold.core.errors import ArtifactError
from tenfold.core.runtime import atomic_savez, atomic_torch_save, md5_file


def _truncate(p, keep=40):
    p.write_bytes(p.read_bytes()[:keep])


def test_each_kind_reads_back_and_a_truncated_file_is_an_artifact_error(tmp_path):
    pq, npz, pt = tmp_path / "t.parquet", tmp_path / "a.npz", tmp_path / "w.pt"
    pd.DataFrame({"a": [1, 2]}).to_parquet(pq)
    atomic_savez(npz, x=np.arange(3))
    torch.save({"w": torch.ones(2)}, pt)
    assert read_parquet(pq)["a"].tolist() == [1, 2]
    assert load_npz(npz)["x"].tolist() == [0, 1, 2]
    assert torch_load(pt)["w"].sum() == 2
    for path, read, kind in ((pq, read_parquet, "parquet"), (npz, load_npz, "npz"), (pt, torch_load, "weights")):
        _truncate(path)
        with pytest.raises(ArtifactError, match=f"{path.name}: corrupt or truncated {kind}") as e:
            read(path)
        assert "\n" not in str(e.value)


def test_missing_file_and_missing_array(tmp_path):
    with pytest.raises(ArtifactError, match="nope.npz: not found"):
        load_npz(tmp_path / "nope.npz")
    atomic_savez(tmp_path / "a.npz", x=np.arange(3))
    with pytest.raises(ArtifactError, match="has no array 'y'"):
        load_npz(tmp_path / "a.npz", ["y"])


def test_equal_weights_saved_twice_give_equal_bytes_so_dvc_sees_no_change(tmp_path):
    torch.manual_seed(0)
    state = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Linear(4, 2)).state_dict()
    a, b = atomic_torch_save(tmp_path / "a" / "net.pt", state), atomic_torch_save(tmp_path / "b" / "net.pt", state)
    assert md5_file(a) == md5_file(b)
    back = torch_load(b)
    assert back.keys() == state.keys() and all(torch.equal(back[k], state[k]) for k in state)
    state["0.bias"] = state["0.bias"] + 1  # and different weights still give different bytes
    assert md5_file(atomic_torch_save(tmp_path / "c.pt", state)) != md5_file(a)
