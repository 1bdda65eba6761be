"""Orchestration overhead: the maze study through `tenfold run maze` (Prefect flow + tasks + MLflow run, registry,
artifacts) vs the same science called directly from the library, each in a fresh process, same params and data.

    python -m benchmarks.bench_orchestration            # CPU default params.yaml (minutes)
    python -m benchmarks.bench_orchestration --quick    # a reduced profile (about a minute)

Target: overhead under 5% of the study's wall time at the CPU default.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
QUICK = {
    "maze": {
        "data": {"train_count": 1000, "test_count": 200},
        "train": {"epochs": 2},
        "compare": {"train_count": 500, "epochs": 1},
    }
}

DIRECT = r"""
import sys, time
import torch
from tenfold.registry import load_params
from tenfold.core.runtime import pick_device
from tenfold.core.seeds import seed_everything, seed_for, seeded
from tenfold.studies.maze import dataset
from tenfold.studies.maze.train import train, evaluate
from tenfold.components.models.recurrent import SegmentNet
params, root = sys.argv[1], sys.argv[2]
P = load_params(params, ["maze"]); c, p = P["common"], P["maze"]; d = p.data
seed = seed_for(c.seed, "maze", "net"); seed_everything(seed_for(c.seed, "maze")); dev = pick_device(c.device)
codes, targets, _ = dataset.load(f"{root}/data/mazes/train_{d.train_size}.npz", d.train_size, d.scale)
tests = {s: dataset.load(f"{root}/data/mazes/test_{s}.npz", s, d.scale) for s in d.test_sizes}
T = p.model.train_iters
m = seeded(seed, lambda: SegmentNet(p.model.width, T, True, p.model.recall, init=p.model.init))
train(m, codes, targets, p.train, dev, seed=seed)
iters = sorted(set(p.eval.test_iters) | {T})
acc = {s: evaluate(m, c_, t_, iters, dev, p.eval.batch_size) for s, (c_, t_, _) in tests.items()}
cfg = p.train.model_copy(update={"epochs": p.compare.epochs}); n = min(p.compare.train_count, len(codes))
for k in p.compare.iters:
    for rec in (True, False):
        sk = seed_for(c.seed, "maze", "twin", k)
        mk = seeded(sk, lambda: SegmentNet(p.model.width, k, rec, p.model.recall, init=p.model.init))
        train(mk, codes[:n], targets[:n], cfg, dev, seed=sk)
        evaluate(mk, *tests[d.train_size][:2], [k], dev, p.eval.batch_size)
print(acc)
"""


def _timed(cmd, env, cwd) -> float:
    t = time.perf_counter()
    r = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{cmd} failed:\n{r.stderr[-3000:]}")
    return time.perf_counter() - t


def run(quick: bool = False) -> dict:
    from tenfold.core.config import deep_merge

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        params = yaml.safe_load((ROOT / "params.yaml").read_text())
        params = {k: v for k, v in params.items() if k in ("common", "maze")}
        if quick:
            params = deep_merge(params, QUICK)
        params["common"]["mlflow_uri"] = f"sqlite:///{tmp / 'mlflow.db'}"
        pfile = tmp / "params.yaml"
        pfile.write_text(yaml.safe_dump(params))
        env = dict(os.environ, PREFECT_HOME=str(tmp / ".prefect"))
        env.pop("MLFLOW_TRACKING_URI", None)
        cli = [sys.executable, "-m", "flows.cli", "--params", str(pfile), "--root", str(tmp)]
        subprocess.run(cli + ["run", "build_mazes"], env=env, cwd=ROOT, check=True, capture_output=True)
        direct = _timed([sys.executable, "-c", DIRECT, str(pfile), str(tmp)], env, ROOT)
        # a fresh checkpoint dir so the orchestrated run trains from scratch too
        orchestrated = _timed(cli + ["run", "maze"], env, ROOT)
        flow_wall = json.loads((tmp / "results" / "maze.json").read_text())["run"]["wall_seconds"]
    return {
        "profile": "quick" if quick else "cpu-default",
        "direct_seconds": round(direct, 1),
        "orchestrated_seconds": round(orchestrated, 1),
        "flow_body_seconds": flow_wall,
        "overhead_fraction": round((orchestrated - direct) / orchestrated, 4),
    }


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    print(json.dumps(run(ap.parse_args().quick), indent=2))
