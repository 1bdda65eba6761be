"""The benchmark protocol: any registered attack against any registered defense, one cell at a time.

Protocol (after the poisoning benchmark, arXiv:2006.12557, and the lab's `--vruns`): setups (target image and
adversarial class, or backdoor class) are fixed by seed; the budget (eps, poison fraction, patch) is fixed; the
attacker crafts on a surrogate trained on clean data; each victim is trained from scratch with a different seed
(grey-box) or fine-tuned from the clean pre-trained network (head only, white-box transfer), as the attack's
taxonomy says. Metrics per cell: clean validation accuracy, attack success (targeted: the target is classified as
the adversarial class; backdoor: triggered test inputs of other classes classified as the adversarial class;
availability: the accuracy drop), and for filters the precision/recall of the removed poisons, for STRIP the
detection rate and false alarms.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch

from tenfold.components.attacks import get_attack
from tenfold.components.attacks.base import CraftContext, Poison, make_setup, stamp
from tenfold.components.attacks.base import craft_steps as attack_steps
from tenfold.components.attacks.metrics import wilson
from tenfold.components.data import cifar10
from tenfold.components.data.images import ImageData, load
from tenfold.components.defenses import get_defense
from tenfold.components.defenses.filtering import precision_recall
from tenfold.components.victims import ConvNet, ResNet, TrainConfig, accuracy, features, input_std, predict, train
from tenfold.core.runtime import channels_last
from tenfold.core.seeds import seeded
from tenfold.studies.security.params import Budget, Craft, Data, Defenses, Victim


def load_data(cfg: Data, root, seed: int) -> ImageData:
    """The benchmark's image data (class-stratified seeded subset): CIFAR-10 from the arrays of DVC stage
    build_cifar10 under `<root>/cifar10`, the digits from their packages."""
    full = cifar10.load(Path(root) / "cifar10") if cfg.dataset == "cifar10" else load(cfg.dataset, root, seed)
    return full.subset(cfg.n_train, cfg.n_test, seed)


def train_config(v: Victim, finetune: bool) -> TrainConfig:
    aug = {"augment": v.augment, "flip": v.flip, "schedule": v.schedule}
    if finetune:
        return TrainConfig(v.finetune_epochs, v.batch_size, v.finetune_lr, v.weight_decay, finetune=True, **aug)
    return TrainConfig(v.epochs, v.batch_size, v.lr, v.weight_decay, warmup_epochs=v.warmup_epochs, **aug)


def input_stats(data: ImageData) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of the training images (the ResNet's input normalisation)."""
    x = data.x_train.astype(np.float64)
    return x.mean((0, 2, 3)).tolist(), x.std((0, 2, 3)).tolist()


def new_model(data: ImageData, v: Victim, seed: int) -> torch.nn.Module:
    if v.arch == "resnet":
        mean, std = input_stats(data)
        return channels_last(
            seeded(
                seed,
                lambda: ResNet(
                    data.shape[0], data.num_classes, v.width, tuple(v.blocks), mean, std, first_stride=v.first_stride
                ),
            )
        )
    return channels_last(seeded(seed, lambda: ConvNet(data.shape[0], data.num_classes, v.width, data.shape[1])))


def train_clean(data: ImageData, v: Victim, device, seed: int) -> torch.nn.Module:
    """The clean network: the attacker's surrogate and the pre-trained start of every fine-tuning victim."""
    return train(new_model(data, v, seed), data.x_train, data.y_train, train_config(v, False), device, seed)


def n_poison(data: ImageData, budget: Budget) -> int:
    return max(1, int(round(budget.poison_fraction * len(data.y_train))))


def mixer(name: str, defenses: Defenses, num_classes: int):
    """The batch mixing of an augmentation defense, as an adaptive attacker puts it in the crafting loop."""
    return get_defense(name).build(getattr(defenses, name), num_classes).mix


def craft(
    attack: str,
    data: ImageData,
    surrogate,
    budget: Budget,
    craft_cfg: Craft,
    seed: int,
    device,
    mix=None,
    flip: bool = False,
    step=None,
) -> Poison:
    """Craft the poison of one setup of `attack`: `seed` is the setup's seed (one per trial, shared by every
    attack, so that the targeted attacks of a trial aim at the same target); the setup depends only on (seed, goal)
    and the crafting's own draws are seeded by it too. `flip`: the victims train with horizontal flips (the
    differentiable augmentation of gradient matching flips too). Targeted poisons record what the clean surrogate
    predicts for their target (`clean_adv_logp`, `clean_pred_adv`): the control of the success rate. `step(1)` is
    called after every crafting iteration (`craft_steps(attack, craft_cfg)` in all)."""
    spec = get_attack(attack)
    setup = make_setup(spec.goal, data.y_test, data.num_classes, seed)
    ctx = CraftContext(
        data.x_train,
        data.y_train,
        data.x_test,
        data.y_test,
        data.num_classes,
        copy.deepcopy(surrogate),
        device,
        setup,
        n_poison(data, budget),
        budget.eps / 255,
        budget.patch_size,
        seed,
        mix,
        flip,
        input_std(surrogate),
        step,
    )
    poison = spec.craft(ctx, getattr(craft_cfg, attack, None))
    if poison.goal == "targeted":
        logp = adv_log_prob(surrogate, poison, data, device)
        pred = int(predict(surrogate, data.x_test[setup.target_index : setup.target_index + 1], device)[0])
        poison.info.update(clean_adv_logp=logp, clean_pred_adv=float(pred == setup.adv_class))
    return poison


def craft_steps(attack: str, craft_cfg: Craft) -> int:
    """Crafting iterations of one poison of `attack` (the total of its progress bar)."""
    return attack_steps(getattr(craft_cfg, attack, None))


def base_attack(label: str) -> str:
    """Registry name of a poison label: adaptive variants are saved as `<attack>+<defense in the loop>`."""
    return label.split("+")[0]


def triggered_inputs(poison: Poison, data: ImageData) -> np.ndarray:
    """Test inputs that should flip under the trigger: the setup's source class if the attack has one (hidden
    trigger, the lab's patch), else every class but the adversarial one."""
    s = poison.setup
    keep = data.y_test == s.source_class if s.source_class >= 0 else data.y_test != s.adv_class
    return stamp(data.x_test[keep], poison.trigger)


def attack_success(model, poison: Poison, data: ImageData, device, clean_acc_baseline: float | None) -> float | None:
    s = poison.setup
    if poison.goal == "targeted":
        return float(predict(model, data.x_test[s.target_index : s.target_index + 1], device)[0] == s.adv_class)
    if poison.goal == "backdoor":
        trig = triggered_inputs(poison, data)
        return float((predict(model, trig, device) == s.adv_class).mean()) if len(trig) else None
    if clean_acc_baseline is None:
        return None
    return max(0.0, clean_acc_baseline - accuracy(model, data.x_test, data.y_test, device))


def backdoor_control(model, poison: Poison, data: ImageData, device) -> dict:
    """What a network that never saw the poisons does with the triggered test inputs: the share it already sends to
    the adversarial class (a salient patch moves some images by itself), pooled counts for `control_rate`."""
    trig = triggered_inputs(poison, data)
    hits = int((predict(model, trig, device) == poison.setup.adv_class).sum()) if len(trig) else 0
    return {"attack": poison.attack, "hits": hits, "n_triggered": int(len(trig))}


VICTIMS = ("from-scratch", "fine-tune")


def _finetune(poison: Poison, victim: str | None) -> bool:
    if victim is not None and victim not in VICTIMS:
        raise ValueError(f"victim must be one of {VICTIMS}, got {victim!r}")
    return (victim or get_attack(base_attack(poison.attack)).victim) == "fine-tune"


def run_cells(
    poison: Poison,
    columns: list[tuple[str, str | None, str | None]],
    data: ImageData,
    v: Victim,
    defenses: Defenses,
    pretrained,
    device,
    seed: int,
    clean_acc_baseline: float | None = None,
    defense_cfg=None,
) -> list[dict]:
    """Train victims on the poisoned data under each column's defense and measure them; one cell per column
    `(defense, victim kind or None for the registry's, label or None)`.

    The victim trained plainly on the poisoned data (per victim kind) is trained once and shared by the columns that
    start from it: `none` is that victim, STRIP inspects it, the filters read its features before retraining on what
    they keep (every victim has the same seed, so this is what separate cells would train too). `defense_cfg`
    overrides the params sub-section of a training-time defense (DP-SGD at several noise levels)."""
    x, y = poison.apply(data.x_train, data.y_train)
    base: dict[bool, torch.nn.Module] = {}
    curves: dict[bool, list[float]] = {}

    def fresh(ft: bool):
        return copy.deepcopy(pretrained) if ft else new_model(data, v, seed)

    def plain(ft: bool):
        if ft not in base:
            hook = None
            if poison.goal == "targeted":  # the target's log p(adversarial class) after every epoch (no extra training)
                curves[ft] = []
                hook = lambda m, epoch: curves[ft].append(target_state(m, poison, data, device))  # noqa: E731
            base[ft] = train(fresh(ft), x, y, train_config(v, ft), device, seed, epoch_hook=hook)
        return base[ft]

    cells = []
    for defense, victim, label in columns:
        spec, ft = get_defense(defense), _finetune(poison, victim)
        tcfg = train_config(v, ft)
        cfg = defense_cfg if defense_cfg is not None and spec.kind == "train" else getattr(defenses, defense, None)
        impl = spec.build(cfg, data.num_classes)
        out: dict = {
            "attack": poison.attack,
            "defense": label or defense,
            "trial_seed": poison.setup.seed,
            "victim": "fine-tune" if ft else "from-scratch",
        }
        if spec.kind == "train":
            model, report = impl.fit(fresh(ft), x, y, tcfg, device, seed)
            out.update({f"defense.{k}": val for k, val in report.items()})
        else:
            model = plain(ft)
        if spec.kind == "filter":
            removed = impl.select(features(model, x, device), y, len(poison.indices))
            prec, rec = precision_recall(removed, poison.indices)
            keep = np.setdiff1d(np.arange(len(y)), removed)
            model = train(fresh(ft), x[keep], y[keep], tcfg, device, seed)
            out.update({"removed": int(len(removed)), "filter_precision": prec, "filter_recall": rec})
        out["clean_acc"] = accuracy(model, data.x_test, data.y_test, device)
        out["n_test"] = int(len(data.y_test))
        out["trained"] = out["clean_acc"] >= v.min_clean_acc
        out["success"] = attack_success(model, poison, data, device, clean_acc_baseline)
        if poison.goal == "backdoor":
            out["n_triggered"] = int(len(triggered_inputs(poison, data)))
        if poison.goal == "targeted":
            out["target_adv_logp"] = adv_log_prob(model, poison, data, device)
            if spec.kind == "none" and ft in curves:
                out["adv_logp_by_epoch"] = [round(lp, 4) for lp, _ in curves[ft]]
                out["success_by_epoch"] = [hit for _, hit in curves[ft]]
        if spec.kind == "detect":
            out.update(_strip(impl, model, poison, data, device))
        cells.append(out)
    return cells


def control_targets(data: ImageData, v: Victim, device, seed: int, setups: list[dict]) -> list[dict]:
    """The control of the targeted success rate: a victim with the cells' seed and recipe trained on the *clean*
    training set; for each targeted setup (manifest entries with `setup_seed`, `target_index`, `adv_class`), whether
    it already classifies the target as the adversarial class, and that class's log-probability. A poison only
    explains a success the control does not already show (weak victims misclassify some targets by themselves)."""
    model = train(new_model(data, v, seed), data.x_train, data.y_train, train_config(v, False), device, seed)
    acc = accuracy(model, data.x_test, data.y_test, device)
    out = []
    with torch.no_grad():
        for e in setups:
            x = torch.as_tensor(data.x_test[e["target_index"] : e["target_index"] + 1]).to(device)
            logp = torch.log_softmax(model.eval()(x), 1)[0]
            out.append(
                {
                    "setup_seed": e["setup_seed"],
                    "control_acc": acc,
                    "control_adv_logp": float(logp[e["adv_class"]]),
                    "control_success": float(int(logp.argmax()) == e["adv_class"]),
                }
            )
    return out


def run_cell(
    poison: Poison,
    defense: str,
    data: ImageData,
    v: Victim,
    defenses: Defenses,
    pretrained,
    device,
    seed: int,
    clean_acc_baseline: float | None = None,
    defense_cfg=None,
    victim: str | None = None,
) -> dict:
    """One column of `run_cells`: `victim` ("from-scratch" or "fine-tune") overrides the attack's default victim
    from the registry."""
    return run_cells(
        poison, [(defense, victim, None)], data, v, defenses, pretrained, device, seed, clean_acc_baseline, defense_cfg
    )[0]


def _strip(impl, model, poison: Poison, data: ImageData, device, n_eval: int = 100) -> dict:
    """STRIP: calibrate on the first half of the clean test set, flag inputs from the second half; success counts
    only attack inputs that flip AND pass the detector."""
    half = len(data.x_test) // 2
    pool, calib = data.x_train[:500], data.x_test[: min(half, n_eval)]
    impl.calibrate(model, calib, pool, device)
    clean_flag = impl.flag(model, data.x_test[half : half + n_eval], pool, device)
    s = poison.setup
    if poison.goal == "targeted":
        attack_x = data.x_test[s.target_index : s.target_index + 1]
    elif poison.goal == "backdoor":
        attack_x = triggered_inputs(poison, data)[:n_eval]
    else:
        return {"strip_false_alarms": float(clean_flag.mean())}
    flagged = impl.flag(model, attack_x, pool, device)
    flipped = predict(model, attack_x, device) == s.adv_class
    return {
        "strip_detection": float(flagged.mean()),
        "strip_false_alarms": float(clean_flag.mean()),
        "success_after_detection": float((flipped & ~flagged).mean()),
        "success": float(flipped.mean()),
    }


@torch.no_grad()
def target_state(model, poison: Poison, data: ImageData, device) -> tuple[float, float]:
    """(log-probability of the adversarial class, 1.0 if it is the predicted class) on a targeted poison's target."""
    s = poison.setup
    x = torch.as_tensor(data.x_test[s.target_index : s.target_index + 1]).to(device)
    logp = torch.log_softmax(model.eval()(x), 1)[0]
    return float(logp[s.adv_class]), float(int(logp.argmax()) == s.adv_class)


@torch.no_grad()
def adv_log_prob(model, poison: Poison, data: ImageData, device) -> float:
    """Log-probability of the adversarial class on a targeted poison's target image."""
    s = poison.setup
    x = torch.as_tensor(data.x_test[s.target_index : s.target_index + 1]).to(device)
    return float(torch.log_softmax(model.eval()(x), 1)[0, s.adv_class])


def continue_clean(data: ImageData, pretrained, set_cfg: TrainConfig, device, seed: int):
    """The dilution check's reference: the clean network trained on for `set_cfg` on the clean training set (one
    network for every poison of the check)."""
    return train(copy.deepcopy(pretrained), data.x_train, data.y_train, set_cfg, device, seed)


def dilution_diagnostic(
    poison: Poison,
    data: ImageData,
    pretrained,
    steps: int,
    lr: float,
    set_cfg: TrainConfig,
    device,
    seed: int,
    clean_continued=None,
) -> dict:
    """Does a targeted poison push its target the right way, and does the push survive dilution in the training set?

    From the clean network (the crafting surrogate), read the target's log-probability of the adversarial class
    after continued training on:
      - `poisons_only`: `steps` full-batch SGD steps (lr `lr`) on the perturbed poisons alone, and `bases_only`: the
        same on the unperturbed base images (the control: images of the adversarial class raise it by themselves).
        `gain` = poisons_only - bases_only is what the crafted perturbation adds, in nats;
      - `poisoned_set` / `clean_set`: `set_cfg` training on the whole poisoned / clean training set, where the
        poisons are 1 image in 1/budget; `set_gain` is their difference (`clean_continued`: the clean-set network of
        `continue_clean`, computed once for all poisons; trained here if None).
    A working crafting step gives gain > 0; an attack lost to dilution gives set_gain ~ 0."""
    full_batch = TrainConfig(steps, max(1, len(poison.indices)), lr, 0.0)
    x_all, y_all = poison.apply(data.x_train, data.y_train)
    out: dict = {
        "attack": poison.attack,
        "trial_seed": poison.setup.seed,
        "n_poison": int(len(poison.indices)),
        "start": adv_log_prob(pretrained, poison, data, device),
    }
    for name, (x, y, cfg) in {
        "poisons_only": (poison.x, poison.y, full_batch),
        "bases_only": (data.x_train[poison.indices], poison.y, full_batch),
        "poisoned_set": (x_all, y_all, set_cfg),
    }.items():
        out[name] = adv_log_prob(train(copy.deepcopy(pretrained), x, y, cfg, device, seed), poison, data, device)
    if clean_continued is None:
        clean_continued = continue_clean(data, pretrained, set_cfg, device, seed)
    out["clean_set"] = adv_log_prob(clean_continued, poison, data, device)
    out["gain"] = out["poisons_only"] - out["bases_only"]
    out["set_gain"] = out["poisoned_set"] - out["clean_set"]
    return out


def summarize(cells: list[dict]) -> dict[tuple[str, str], dict]:
    """Per (attack, defense), over setups: the mean of every numeric metric over the victims that trained (clean
    accuracy at least the victim's `min_clean_acc`; the others are counted in `failed` and enter no mean and no
    rate), `trials` (all victims), and the success rate's 95% Wilson interval (`success_lo`, `success_hi`): over
    the targets for a targeted attack (`successes` of `n`), over the pooled triggered test images for a backdoor;
    `success_min`/`success_max` give the spread over setups; `clean_acc_lo`/`clean_acc_hi` the Wilson interval of
    the clean accuracy over the pooled test images."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for c in cells:
        groups.setdefault((c["attack"], c["defense"]), []).append(c)
    out = {}
    for key, rows in groups.items():
        ok = [r for r in rows if r.get("trained", True)]
        keys = {k for r in ok for k, val in r.items() if isinstance(val, (int, float)) and not isinstance(val, bool)}
        m = {
            k: float(np.mean([r[k] for r in ok if r.get(k) is not None]))
            for k in sorted(keys)
            if any(r.get(k) is not None for r in ok)
        }
        m["trials"], m["failed"] = len(rows), len(rows) - len(ok)
        acc = [r for r in ok if r.get("clean_acc") is not None and r.get("n_test")]
        ci = wilson(sum(r["clean_acc"] * r["n_test"] for r in acc), sum(r["n_test"] for r in acc))
        if ci is not None:
            m["clean_acc_lo"], m["clean_acc_hi"] = ci
        succ = [r for r in ok if r.get("success") is not None]
        if succ:
            m["success_min"] = float(min(r["success"] for r in succ))
            m["success_max"] = float(max(r["success"] for r in succ))
            if all("n_triggered" in r for r in succ):  # backdoor: pooled over triggered images
                k, n = sum(r["success"] * r["n_triggered"] for r in succ), sum(r["n_triggered"] for r in succ)
            elif all("target_adv_logp" in r for r in succ):  # targeted: one target per setup
                k, n = sum(r["success"] for r in succ), len(succ)
                m["successes"] = int(round(k))
            else:
                k = n = 0
            ci = wilson(k, n)
            if ci is not None:
                m["success_lo"], m["success_hi"], m["n"] = ci[0], ci[1], int(n)
        out[key] = m
    return out
