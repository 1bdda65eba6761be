"""The artifact of stage `craft_poisons`, reused (never recrafted) by stages `security` and `augmentation`.

Under `<data_root>/security/poisons`: the clean network (`clean_net.pt`), one `<attack>_<trial>.npz` per crafted
poison and `manifest.json`, which records what they were made with (`made_with`: the data subset and the clean
network's architecture and training recipe, and the seed) and the seed of the data subset. A later stage rebuilding
the data and the clean network from its own params first checks them against the manifest and fails with the names
of the params that differ (not with a shape error, nor with poisons silently applied to another data subset).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from tenfold.components.data.images import ImageData
from tenfold.core.errors import TenfoldError
from tenfold.core.runtime import atomic_write_json
from tenfold.studies.security import benchmark
from tenfold.studies.security.params import SecurityParams

MANIFEST = "manifest.json"
CLEAN_NET = "clean_net.pt"
# the victim params the clean network depends on (architecture and from-scratch recipe); the fine-tuning ones
# (finetune_epochs, finetune_lr) only matter to the later stages' victims
CLEAN_NET_PARAMS = (
    "arch",
    "blocks",
    "first_stride",
    "width",
    "epochs",
    "batch_size",
    "lr",
    "weight_decay",
    "warmup_epochs",
    "augment",
    "flip",
)


class CraftedMismatch(TenfoldError, ValueError):
    """The crafted poisons were made with other data or clean-network params than this run's (the CLI prints the
    message, which names the params that differ)."""


def poison_dir(data_root: str | Path) -> Path:
    return Path(data_root) / "security" / "poisons"


def made_with(p: SecurityParams, common_seed: int) -> dict:
    """The params the clean network, the data subset and the poisons' training indices depend on, by their
    dotted names in params.yaml."""
    return {
        "common.seed": common_seed,
        **{f"security.data.{k}": v for k, v in p.data.model_dump().items()},
        **{f"security.victim.{k}": getattr(p.victim, k) for k in CLEAN_NET_PARAMS},
    }


def manifest(
    p: SecurityParams, common_seed: int, data: ImageData, data_seed: int, clean_acc: float, poisons: list[dict]
) -> dict:
    """The manifest of a craft_poisons run."""
    return {
        "dataset": p.data.dataset,
        "source": data.source,
        "clean_acc": clean_acc,
        "clean_net": CLEAN_NET,
        "poisons": poisons,
        "data_seed": data_seed,
        "made_with": made_with(p, common_seed),
    }


def write_manifest(out_dir: str | Path, content: dict) -> Path:
    return atomic_write_json(Path(out_dir) / MANIFEST, content)


def differences(recorded: dict, p: SecurityParams, common_seed: int) -> dict[str, tuple]:
    """{param: (crafted with, this run)} for every recorded param this run sets differently."""
    now = made_with(p, common_seed)
    return {k: (recorded.get(k), v) for k, v in now.items() if recorded.get(k) != v}


def read_manifest(out_dir: str | Path, p: SecurityParams, common_seed: int) -> dict:
    """The manifest, checked against this run's params; poison paths resolved under `out_dir`.

    Raises FileNotFoundError if craft_poisons has not run, CraftedMismatch naming the params that differ."""
    out_dir = Path(out_dir)
    path = out_dir / MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"{path}: no crafted poisons; run `python -m flows.cli run craft_poisons` first")
    content = json.loads(path.read_text())
    if "made_with" not in content:
        raise CraftedMismatch(
            f"{path}: made by an older craft_poisons that did not record its params; rerun "
            "`python -m flows.cli run craft_poisons`"
        )
    diff = differences(content["made_with"], p, common_seed)
    if diff:
        listed = "; ".join(f"{k}: crafted with {a!r}, this run {b!r}" for k, (a, b) in diff.items())
        raise CraftedMismatch(
            f"{path}: the poisons and the clean network were made with other params ({listed}); "
            "rerun `python -m flows.cli run craft_poisons` (or `dvc repro`) with these params"
        )
    for entry in content["poisons"]:
        entry["path"] = str(out_dir / Path(entry["path"]).name)
    return content


def load_crafted(data_root: str | Path, p: SecurityParams, common_seed: int) -> tuple[ImageData, nn.Module, dict]:
    """Data, the clean network and the checked manifest written by craft_poisons."""
    out_dir = poison_dir(data_root)
    content = read_manifest(out_dir, p, common_seed)
    data = benchmark.load_data(p.data, data_root, content["data_seed"])
    net = benchmark.new_model(data, p.victim, 0)
    net.load_state_dict(torch.load(out_dir / content["clean_net"], weights_only=True))
    return data, net.eval(), content
