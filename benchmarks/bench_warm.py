"""A stage's start-up and exit, cold (a new interpreter) against warm (a fork of flows/warm.py), in one run.

    python -m benchmarks.bench_warm [--repeats 5]

The command timed is this file as a stand-in stage (`run probe`): it imports what every study stage imports
(torch, torchvision, `torch.optim` with `torch._dynamo`, prefect's flow engine, `mlflow.pytorch`, matplotlib), trains a
small conv net for `--steps` steps (timed alone: does a fork compute as fast as a new interpreter, and the same
numbers?) and exits, without touching the project's outputs. Cold runs it as `python <this file> run
probe`, as DVC starts a stage without `make pipeline`; warm asks a server started once with the default preload
(`flows.warm.PRELOAD`), as `make pipeline` does. The two alternate, so a drift of the machine hits both alike.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLIENT = (
    "import sys\nfrom flows.warm import delegate\nsys.exit(delegate(['tenfold', 'run', 'probe', *sys.argv[1:]]) or 0)"
)


def probe(steps: int) -> None:
    import matplotlib.pyplot  # noqa: F401
    import mlflow.pytorch  # noqa: F401
    import prefect.flow_engine  # noqa: F401
    import torch
    import torchvision  # noqa: F401

    torch.set_num_threads(1)  # as a study task runs
    torch.manual_seed(0)  # the same weights cold and warm: the two must compute the same loss
    g = torch.Generator().manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.GroupNorm(4, 16), torch.nn.ReLU(), torch.nn.Flatten(),
        torch.nn.Linear(16 * 32 * 32, 10),
    )  # fmt: skip
    opt = torch.optim.SGD(net.parameters(), lr=0.01)  # imports torch._dynamo, as every training stage does
    x, y = torch.randn(64, 3, 32, 32, generator=g), torch.randint(0, 10, (64,), generator=g)
    t = time.perf_counter()
    for _ in range(steps):  # the compute a stage does once started: timed alone, warm against cold
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    print(
        json.dumps(
            {"compute_seconds": time.perf_counter() - t, "loss": float(torch.nn.functional.cross_entropy(net(x), y))}
        )
    )
    import gc

    gc.freeze()  # as `python -m flows.cli` does before a cold stage exits


def _timed(cmd, env) -> tuple[float, dict]:
    t = time.perf_counter()
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if r.returncode != 0 or "running in this process" in r.stderr:
        raise RuntimeError(f"{cmd[:3]} failed ({r.returncode}): {r.stderr[-800:]}")
    return time.perf_counter() - t, json.loads(r.stdout)


def run(repeats: int = 5, steps: int = 0) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="bw", dir="/tmp"))
    env = {k: v for k, v in os.environ.items() if k != "TENFOLD_WARM"}
    env["PYTHONPATH"] = f"{ROOT}{os.pathsep}{env.get('PYTHONPATH', '')}"
    t = time.perf_counter()
    cmd = [sys.executable, "-m", "flows.warm", "serve", str(tmp / "s"), "--ready-file", str(tmp / "r")]
    server = subprocess.Popen(cmd + ["--module", __file__], cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    try:
        while not (tmp / "r").exists():
            if server.poll() is not None:
                raise RuntimeError("warm server did not start")
            time.sleep(0.05)
        ready = time.perf_counter() - t
        cold, warm, out = [], [], {"cold": [], "warm": []}
        for _ in range(repeats):
            wall, o = _timed([sys.executable, __file__, "run", "probe", str(steps)], env)
            cold.append(wall)
            out["cold"].append(o)
            wall, o = _timed([sys.executable, "-c", CLIENT, str(steps)], {**env, "TENFOLD_WARM": str(tmp / "s")})
            warm.append(wall)
            out["warm"].append(o)
        if len({o["loss"] for o in out["cold"] + out["warm"]}) != 1:
            raise RuntimeError(f"warm and cold stages computed different losses: {out}")
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)
    med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    return {
        "server_ready_seconds": round(ready, 2),
        "cold_seconds": [round(x, 2) for x in cold],
        "warm_seconds": [round(x, 2) for x in warm],
        "cold_median": round(med(cold), 2),
        "warm_median": round(med(warm), 2),
        "cold_over_warm": round(med(cold) / med(warm), 1),
        "saved_per_stage_seconds": round(med(cold) - med(warm), 2),
        "steps": steps,
        "compute_cold_median": round(med([o["compute_seconds"] for o in out["cold"]]), 3),
        "compute_warm_median": round(med([o["compute_seconds"] for o in out["warm"]]), 3),
        "loss": out["cold"][0]["loss"],
    }


if __name__ == "__main__":
    if sys.argv[1:3] == ["run", "probe"]:
        probe(int(sys.argv[3]) if len(sys.argv) > 3 else 0)
    else:
        ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        ap.add_argument("--repeats", type=int, default=5)
        ap.add_argument("--steps", type=int, default=0, help="training steps of a small conv net, timed alone")
        a = ap.parse_args()
        print(json.dumps(run(a.repeats, a.steps), indent=2))
