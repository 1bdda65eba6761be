"""Run every benchmark module (`benchmarks/bench_*.py`) in its own process and print what each reports."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    for f in sorted(HERE.glob("bench_*.py")):
        print(f"## {f.stem}", flush=True)
        r = subprocess.run([sys.executable, "-m", f"benchmarks.{f.stem}"], cwd=HERE.parent)
        if r.returncode:
            print(f"(exit {r.returncode})")
