"""Prefect tasks of the `security` and `augmentation` studies: load the data, train the clean network, craft one
poison, load what craft_poisons made, run one benchmark cell or one dilution check; and the helpers that log the
cells as nested MLflow runs under the study's run."""

from __future__ import annotations

import torch
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from tasks._task import task
from tasks.progress import progress
from tenfold.components.attacks.base import Poison
from tenfold.core.runtime import atomic_torch_save
from tenfold.studies.security import benchmark, crafted
from tenfold.studies.security.params import Data, SecurityParams


@task(name="load-security-data", cache_policy=NO_CACHE)
def load_data(cfg: Data, data_root: str, seed: int):
    data = benchmark.load_data(cfg, data_root, seed)
    get_run_logger().info(
        "%s: %d training / %d test images (source %s)", cfg.dataset, len(data.y_train), len(data.y_test), data.source
    )
    return data


@task(name="train-clean-net", cache_policy=NO_CACHE)
def train_clean(data, victim, device, seed: int, path: str):
    torch.set_num_threads(1)
    model = benchmark.train_clean(data, victim, device, seed)
    atomic_torch_save(path, model.state_dict())
    acc = benchmark.accuracy(model, data.x_test, data.y_test, device)
    get_run_logger().info("clean network: accuracy %.4f (saved %s)", acc, path)
    return model, acc


@task(name="craft-poison", cache_policy=NO_CACHE)
def craft_poison(
    attack: str,
    data,
    surrogate,
    budget,
    craft_cfg,
    trial: int,
    seed: int,
    device,
    path: str,
    mix=None,
    label: str | None = None,
    flip: bool = False,
    show_progress: bool = False,
) -> dict:
    """Trial `trial` of `attack` (`seed`: that trial's setup seed), saved to `path`; its manifest entry. A bar of
    the crafting iterations when `show_progress`, a Prefect progress artifact inside a run."""
    torch.set_num_threads(1)
    total = benchmark.craft_steps(attack, craft_cfg)
    with progress(f"craft {label or attack} #{trial}", total, enabled=show_progress and total > 0) as step:
        poison = benchmark.craft(attack, data, surrogate, budget, craft_cfg, seed, device, mix, flip, step)
    poison.attack = label or attack
    poison.save(path)
    get_run_logger().info("crafted %s trial %d: %d poisons %s", poison.attack, trial, len(poison.indices), poison.info)
    st = poison.setup
    return {
        "attack": poison.attack,
        "trial": trial,
        "path": path,
        "n_poison": int(len(poison.indices)),
        "setup_seed": st.seed,
        "adv_class": st.adv_class,
        "target_true": st.target_true,
        "target_index": st.target_index,
        "source_class": st.source_class,
        **{k: float(v) for k, v in poison.info.items() if isinstance(v, (int, float)) and not isinstance(v, bool)},
    }


@task(name="load-crafted", cache_policy=NO_CACHE)
def load_crafted(data_root: str, security: SecurityParams, common_seed: int):
    """(data, clean network, manifest) of craft_poisons, checked against these params (`crafted.load_crafted`)."""
    data, net, manifest = crafted.load_crafted(data_root, security, common_seed)
    get_run_logger().info(
        "loaded %d crafted poisons and the clean network (accuracy %.4f) from %s",
        len(manifest["poisons"]),
        manifest["clean_acc"],
        crafted.poison_dir(data_root),
    )
    return data, net, manifest


@task(name="backdoor-control", cache_policy=NO_CACHE)
def backdoor_control(poison_path: str, net, data, device) -> dict:
    """`benchmark.backdoor_control`: the clean network (never saw the poisons) on the poison's triggered inputs."""
    out = benchmark.backdoor_control(net, Poison.load(poison_path), data, device)
    get_run_logger().info(
        "%s control (clean network): %d of %d triggered", out["attack"], out["hits"], out["n_triggered"]
    )
    return out


@task(name="benchmark-cells", cache_policy=NO_CACHE)
def run_cells(
    poison_path: str,
    columns: list,
    data,
    victim,
    defenses,
    pretrained,
    device,
    seed: int,
    clean_acc: float,
    defense_cfg=None,
) -> list[dict]:
    """`benchmark.run_cells` of one crafted poison: one cell per column (defense, victim kind, label)."""
    torch.set_num_threads(1)
    poison = Poison.load(poison_path)
    cells = benchmark.run_cells(
        poison, columns, data, victim, defenses, pretrained, device, seed, clean_acc, defense_cfg
    )
    for cell in cells:
        get_run_logger().info(
            "%s #%d x %s: clean %.3f success %s%s",
            cell["attack"],
            cell["trial_seed"],
            cell["defense"],
            cell["clean_acc"],
            cell["success"],
            "" if cell["trained"] else " (FAILED training: excluded from rates)",
        )
    return cells


@task(name="control-victim", cache_policy=NO_CACHE)
def control_victim(data, victim, device, seed: int, setups: list[dict]) -> list[dict]:
    """`benchmark.control_targets`: the cells' victim trained on clean data, read on the targeted setups."""
    torch.set_num_threads(1)
    out = benchmark.control_targets(data, victim, device, seed, setups)
    get_run_logger().info(
        "control victim (clean data): accuracy %.3f, %d of %d targets already adversarial",
        out[0]["control_acc"] if out else float("nan"),
        sum(o["control_success"] for o in out),
        len(out),
    )
    return out


def _set_cfg(victim, diagnostic):
    return benchmark.TrainConfig(
        diagnostic.set_epochs,
        victim.batch_size,
        diagnostic.set_lr,
        victim.weight_decay,
        augment=victim.augment,
        flip=victim.flip,
    )


@task(name="dilution-reference", cache_policy=NO_CACHE)
def dilution_reference(data, victim, diagnostic, pretrained, device, seed: int):
    """The clean network trained on for the dilution check's epochs on the clean set (shared by every poison)."""
    torch.set_num_threads(1)
    return benchmark.continue_clean(data, pretrained, _set_cfg(victim, diagnostic), device, seed)


@task(name="dilution-check", cache_policy=NO_CACHE)
def dilution_check(
    poison_path: str, data, victim, diagnostic, pretrained, device, seed: int, clean_continued=None
) -> dict:
    """`benchmark.dilution_diagnostic` of one targeted poison (see there)."""
    torch.set_num_threads(1)
    poison = Poison.load(poison_path)
    out = benchmark.dilution_diagnostic(
        poison,
        data,
        pretrained,
        diagnostic.steps,
        diagnostic.lr,
        _set_cfg(victim, diagnostic),
        device,
        seed,
        clean_continued,
    )
    get_run_logger().info(
        "%s #%d: log p_adv gain %.2f alone, %.2f in the whole set",
        poison.attack,
        poison.setup.seed,
        out["gain"],
        out["set_gain"],
    )
    return out


def log_cells(run, cells: list[dict]) -> None:
    """One nested MLflow run per benchmark cell under the study's parent run."""
    client = run.client
    for c in cells:
        child = run.child(
            f"{c['attack']} x {c['defense']} #{c['trial_seed']}",
            {"attack": c["attack"], "defense": c["defense"], "victim": c["victim"]},
        )
        for k, v in c.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                client.log_metric(child, k.replace("(", "_").replace(")", "").replace("=", "_"), float(v))
        client.set_terminated(child)


def log_dilution(run, diag: list[dict]) -> None:
    """The dilution check's gains, one pair of metrics per gradient-matching poison."""
    for d in diag:
        key = f"dilution.{d['attack'].replace('+', '_')}.{d['trial_seed']}"
        run.log_metrics({f"{key}.gain": d["gain"], f"{key}.set_gain": d["set_gain"]})
