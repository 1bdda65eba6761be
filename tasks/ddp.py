"""Launch a library training entry point under `torchrun` (data-parallel over `nproc` local processes) from a task.

The Prefect task stays one process (it logs to MLflow once); the training runs in `nproc` ranks started by
`python -m torch.distributed.run --standalone --nproc_per_node N -m <module> <spec.json>`, and rank 0 writes the
result file the task reads back. A failing rank fails the task with the launcher's last output lines.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tenfold.core.errors import TenfoldError


class DistributedTrainingFailed(TenfoldError):
    pass


def run_torchrun(module: str, spec: dict, nproc: int, workdir: str | Path, timeout: float | None = None) -> Path:
    """Write `spec` to workdir/spec.json, run `module` under torchrun with `nproc` processes, return the output path."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    spec = {**spec, "out": str(workdir / "out.pt")}
    (workdir / "spec.json").write_text(json.dumps(spec))
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        "-m",
        module,
        str(workdir / "spec.json"),
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0 or not Path(spec["out"]).exists():
        tail = "\n".join((r.stdout + r.stderr).strip().splitlines()[-15:])
        raise DistributedTrainingFailed(
            f"torchrun {module} with {nproc} processes failed (exit {r.returncode}):\n{tail}"
        )
    return Path(spec["out"])
