"""Evaluation tasks."""
from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from tenfold.mazes.train import evaluate as eval_mazes


@task(name="evaluate-mazes", cache_policy=NO_CACHE)
def evaluate_mazes(model, codes, targets, iter_list: list[int], device, batch_size: int, label: str) -> dict[int, float]:
    acc = eval_mazes(model, codes, targets, iter_list, device, batch_size)
    best = max(acc, key=acc.get)
    get_run_logger().info("%s: best exact match %.3f at %d iterations", label, acc[best], best)
    return acc
