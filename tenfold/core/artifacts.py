"""Reading files that a stage wrote (parquet tables, npz arrays, torch weights): a truncated or corrupt file is an
`ArtifactError` naming it (the CLI adds the `dvc repro <stage>` that rebuilds it), never a raw library traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tenfold.core.errors import ArtifactError


def _missing(path: Path) -> ArtifactError:
    return ArtifactError(path, "not found (has the stage that writes it run?)")


def read_parquet(path: str | Path):
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise _missing(path)
    try:
        return pd.read_parquet(path)
    except Exception as e:  # noqa: BLE001 - pyarrow raises ArrowInvalid, OSError, ...
        raise ArtifactError(path, f"corrupt or truncated parquet ({type(e).__name__})") from None


def load_npz(path: str | Path, keys: list[str] | None = None) -> dict[str, Any]:
    """All arrays (or `keys`) of an .npz, read eagerly so a truncated member fails here."""
    import numpy as np

    path = Path(path)
    if not path.exists():
        raise _missing(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            absent = [k for k in keys or [] if k not in z.files]
            if absent:
                raise ArtifactError(path, f"has no array {absent[0]!r} (written by an older version? rebuild it)")
            return {k: z[k] for k in (keys or z.files)}
    except ArtifactError:
        raise
    except Exception as e:  # noqa: BLE001 - zipfile.BadZipFile, ValueError, EOFError, OSError
        raise ArtifactError(path, f"corrupt or truncated npz ({type(e).__name__})") from None


def torch_load(path: str | Path, map_location: Any = "cpu") -> Any:
    """`torch.load(weights_only=True)` of weights or a state dict."""
    import torch

    path = Path(path)
    if not path.exists():
        raise _missing(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises RuntimeError, UnpicklingError, EOFError
        raise ArtifactError(path, f"corrupt or truncated weights file ({type(e).__name__})") from None
