"""Run every benchmark module (`benchmarks/bench_*.py`) in its own process, one after the other, and keep what
each printed in one file, so ratios from different benchmarks come from one session on one machine.

    python -m benchmarks.run_all                 # all of them; writes benchmarks/results.md
    python -m benchmarks.run_all maze release    # only those whose name contains one of the words
    python -m benchmarks.run_all --out FILE

The header records the git commit, the core count and the load average before and after each benchmark:
numbers taken while something else ran on the machine are not comparable, and the file says so.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import stage_times

HERE = Path(__file__).resolve().parent
# extra arguments per benchmark (what keeps `make bench` in minutes)
ARGS = {"bench_orchestration": ["--quick"], "bench_lowkey": ["--threads", "1"]}


def _commit() -> str:
    r = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE.parent, capture_output=True, text=True)
    return r.stdout.strip() or "unknown"


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("only", nargs="*", help="substrings of benchmark names to run (default: all)")
    ap.add_argument("--out", default=str(HERE / "results.md"))
    a = ap.parse_args(argv)
    benches = [f for f in sorted(HERE.glob("bench_*.py")) if not a.only or any(w in f.stem for w in a.only)]
    if not benches:
        print(f"no benchmark matches {a.only}", file=sys.stderr)
        return 2
    lines = [
        f"# Benchmarks, one session ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
        "",
        f"commit {_commit()}, {os.cpu_count()} cores, python {sys.version.split()[0]}; "
        "load average (1/5/15 min) is printed before and after each benchmark.",
        "",
    ]
    failed = 0
    for f in benches:
        cmd = [sys.executable, "-m", f"benchmarks.{f.stem}", *ARGS.get(f.stem, [])]
        print(f"## {f.stem}", flush=True)
        before, t0 = _load(), time.time()
        r = subprocess.run(cmd, cwd=HERE.parent, capture_output=True, text=True)
        out = (r.stdout + (f"\n(exit {r.returncode})\n{r.stderr[-2000:]}" if r.returncode else "")).rstrip()
        print(out, flush=True)
        failed += bool(r.returncode)
        lines += [
            f"## {f.stem}",
            "",
            f"`{' '.join(['python', '-m', f'benchmarks.{f.stem}', *ARGS.get(f.stem, [])])}`: "
            f"{time.time() - t0:.0f} s, load before {before}, after {_load()}",
            "",
            "```",
            out,
            "```",
            "",
        ]
    previous = Path(a.out).read_text() if Path(a.out).exists() else ""
    text = "\n".join(lines)
    if stage_times.BEGIN in previous and stage_times.END in previous:  # keep the locked run's per-study times
        kept = previous[previous.index(stage_times.BEGIN) + len(stage_times.BEGIN) : previous.index(stage_times.END)]
        text = stage_times.splice(text, kept.strip("\n"))
    Path(a.out).write_text(text)
    print(f"wrote {a.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
