"""Same seed, same thread count, same machine: two from-scratch runs of two training studies give bit-identical
metrics and model weights, with tasks running in parallel on the thread runner (2 workers)."""

import json

import pytest
import torch

from tests.support.cifar import shared_with_cifar_slice


def _same(x, y) -> bool:
    """Equal nested state: tensors bit for bit (torch.equal), everything else with ==."""
    if isinstance(x, dict):
        return isinstance(y, dict) and x.keys() == y.keys() and all(_same(x[k], y[k]) for k in x)
    if isinstance(x, (list, tuple)):
        return type(x) is type(y) and len(x) == len(y) and all(_same(u, v) for u, v in zip(x, y))
    if torch.is_tensor(x):
        return torch.is_tensor(y) and x.dtype == y.dtype and x.shape == y.shape and torch.equal(x, y)
    return x == y


def _strip(results: dict) -> dict:
    return {k: v for k, v in results.items() if k != "run"}


@pytest.mark.slow
def test_two_runs_from_scratch_are_bit_identical(tmp_path, tiny, prefect_harness):
    from flows.common import flow_for, run_flow

    shared = shared_with_cifar_slice(tmp_path / "shared")  # depth reads the CIFAR-10 arrays of build_cifar10
    common = {"task_runner": "thread", "max_workers": 2, "threads": 1, "shared_data": str(shared)}
    params = tiny(["maze", "depth"], {"common": common})
    for rep in ("a", "b"):
        for stage in ("build_cifar10", "build_mazes", "maze", "depth"):
            run_flow(flow_for(stage), params, root=str(tmp_path / rep))
    a, b = tmp_path / "a", tmp_path / "b"
    for slug in ("maze", "depth"):
        assert (a / "metrics" / f"{slug}.json").read_bytes() == (b / "metrics" / f"{slug}.json").read_bytes(), slug
        # results name their data source, which holds the run's own root: the one place the two runs may differ
        ra, rb = (json.loads((r / "results" / f"{slug}.json").read_text().replace(str(r), "<root>")) for r in (a, b))
        assert _strip(ra) == _strip(rb), slug
        models = sorted(p.relative_to(a) for p in (a / "models" / slug).rglob("*") if p.is_file())
        assert models, slug
        for rel in models:  # torch.save writes a random serialization id: compare what the files hold
            assert _same(torch.load(a / rel, weights_only=True), torch.load(b / rel, weights_only=True)), rel
    for f in sorted((a / "data" / "mazes").glob("*.npz")):
        assert f.read_bytes() == (b / "data" / "mazes" / f.name).read_bytes()
