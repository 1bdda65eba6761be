"""Prefect tasks of the shared data builds (datasets several studies read)."""

from __future__ import annotations

from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from tasks._task import task
from tenfold.components.data import cifar10


@task(name="build-cifar10", cache_policy=NO_CACHE)
def build_cifar10(out_dir: str, data_root: str, shared_root: str, allow_download: bool) -> dict:
    manifest = cifar10.build(out_dir, data_root, shared_root, allow_download)
    get_run_logger().info(
        "CIFAR-10: %d train / %d test images from %s", manifest["n_train"], manifest["n_test"], manifest["source"]
    )
    return manifest
