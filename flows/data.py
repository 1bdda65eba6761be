"""Shared data builds (one DVC stage each): datasets that several studies read, built once into DVC outputs."""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from flows.common import shared_data
from tasks.data import build_cifar10
from tenfold.registry import load_params


@flow(name="build_cifar10")
def build_cifar10_flow(params_path: str = "params.yaml", root: str = ".") -> dict:
    """CIFAR-10 arrays under <data_root>/cifar10 (torchvision first, else the offline ImageFolder copy)."""
    common = load_params(params_path, [])["common"]
    data_root = Path(root) / common.data_root
    return build_cifar10.submit(
        str(data_root / "cifar10"), str(data_root), str(shared_data(common, root)), common.allow_download
    ).result()
