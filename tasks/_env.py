"""Environment defaults applied before prefect, mlflow or dvc is imported (no telemetry, local state), read from
scripts/defaults.env, the one list shared with scripts/env.sh. Imported by `tasks` and `flows` first."""

import os
from pathlib import Path

_FILE = Path(__file__).resolve().parents[1] / "scripts" / "defaults.env"


def apply(path: Path = _FILE) -> None:
    if not path.exists():  # an installed copy without the scripts folder: the variables stay as they are
        return
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        if value.startswith("./"):
            value = os.path.join(os.getcwd(), value[2:])
        os.environ.setdefault(key, value)
    if os.environ.get("CI"):
        os.environ.setdefault("TQDM_DISABLE", "1")


apply()
