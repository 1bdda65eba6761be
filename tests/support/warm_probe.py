"""A stand-in stage command for tests/unit/test_warm.py: `run ACTION [ARG]` as the warm server's fork runs it."""

import json
import os
import random
import sys
import time

_, action, *rest = sys.argv[1:] if len(sys.argv) > 1 else ["run", "env"]
if action == "env":
    seen = {k: os.environ.get(k) for k in ("TENFOLD_PROBE", "TENFOLD_WARM", "TORCHINDUCTOR_CACHE_DIR")}
    import numpy as np

    draws = {"random": random.random(), "numpy": float(np.random.random())}
    if "torch" in sys.modules:  # preloaded by the real server
        draws["torch"] = float(sys.modules["torch"].rand(1))
    print(json.dumps({"pid": os.getpid(), "cwd": os.getcwd(), "env": seen, "draws": draws}))
    print("probe stderr line", file=sys.stderr)
elif action == "exit":
    sys.exit(int(rest[0]))
elif action == "raise":
    raise RuntimeError("probe failure")
elif action == "sleep":
    print(os.getpid(), flush=True)
    time.sleep(float(rest[0]))
    print("slept", flush=True)
