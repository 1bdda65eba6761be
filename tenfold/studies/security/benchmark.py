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

import numpy as np
import torch

from tenfold.components.attacks import get_attack
from tenfold.components.attacks.base import CraftContext, Poison, make_setup, stamp
from tenfold.components.data.images import ImageData, load
from tenfold.components.defenses import get_defense
from tenfold.components.defenses.filtering import precision_recall
from tenfold.components.victims import ConvNet, TrainConfig, accuracy, features, predict, train
from tenfold.core.seeds import seeded
from tenfold.studies.security.params import Budget, Craft, Data, Defenses, Victim


def load_data(cfg: Data, root, seed: int) -> ImageData:
    """The benchmark's image data (class-stratified seeded subset of the offline loader's split)."""
    return load(cfg.dataset, root, seed).subset(cfg.n_train, cfg.n_test, seed)


def train_config(v: Victim, finetune: bool) -> TrainConfig:
    if finetune:
        return TrainConfig(v.finetune_epochs, v.batch_size, v.finetune_lr, v.weight_decay, finetune=True)
    return TrainConfig(v.epochs, v.batch_size, v.lr, v.weight_decay)


def new_model(data: ImageData, v: Victim, seed: int) -> ConvNet:
    return seeded(seed, lambda: ConvNet(data.shape[0], data.num_classes, v.width, data.shape[1]))


def train_clean(data: ImageData, v: Victim, device, seed: int) -> ConvNet:
    """The clean network: the attacker's surrogate and the pre-trained start of every fine-tuning victim."""
    return train(new_model(data, v, seed), data.x_train, data.y_train, train_config(v, False), device, seed)


def n_poison(data: ImageData, budget: Budget) -> int:
    return max(1, int(round(budget.poison_fraction * len(data.y_train))))


def mixer(name: str, defenses: Defenses, num_classes: int):
    """The batch mixing of an augmentation defense, as an adaptive attacker puts it in the crafting loop."""
    return get_defense(name).build(getattr(defenses, name), num_classes).mix


def craft(
    attack: str, data: ImageData, surrogate: ConvNet, budget: Budget, craft_cfg: Craft, seed: int, device, mix=None
) -> Poison:
    """Craft the poison of one setup of `attack`: `seed` is the setup's seed (one per trial, shared by every
    attack, so that the targeted attacks of a trial aim at the same target); the setup depends only on (seed, goal)
    and the crafting's own draws are seeded by it too."""
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
    )
    return spec.craft(ctx, getattr(craft_cfg, attack, None))


def base_attack(label: str) -> str:
    """Registry name of a poison label: adaptive variants are saved as `<attack>+<defense in the loop>`."""
    return label.split("+")[0]


def triggered_inputs(poison: Poison, data: ImageData) -> np.ndarray:
    """Test inputs that should flip under the trigger: source class (hidden trigger) or every other class."""
    s = poison.setup
    keep = data.y_test == s.source_class if poison.attack == "hidden_trigger" else data.y_test != s.adv_class
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


VICTIMS = ("from-scratch", "fine-tune")


def run_cell(
    poison: Poison,
    defense: str,
    data: ImageData,
    v: Victim,
    defenses: Defenses,
    pretrained: ConvNet,
    device,
    seed: int,
    clean_acc_baseline: float | None = None,
    defense_cfg=None,
    victim: str | None = None,
) -> dict:
    """Train one victim on the poisoned data under `defense` and measure it. `defense_cfg` overrides the params
    sub-section (used for DP-SGD at several noise levels); `victim` ("from-scratch" or "fine-tune") overrides the
    attack's default victim from the registry."""
    spec = get_defense(defense)
    if victim is not None and victim not in VICTIMS:
        raise ValueError(f"victim must be one of {VICTIMS}, got {victim!r}")
    finetune = (victim or get_attack(base_attack(poison.attack)).victim) == "fine-tune"
    tcfg = train_config(v, finetune)
    cfg = defense_cfg if defense_cfg is not None else getattr(defenses, defense, None)
    impl = spec.build(cfg, data.num_classes)
    x, y = poison.apply(data.x_train, data.y_train)

    def fresh():
        return copy.deepcopy(pretrained) if finetune else new_model(data, v, seed)

    out: dict = {
        "attack": poison.attack,
        "defense": defense,
        "trial_seed": poison.setup.seed,
        "victim": "fine-tune" if finetune else "from-scratch",
    }
    if spec.kind in ("train", "none"):
        model, report = impl.fit(fresh(), x, y, tcfg, device, seed)
        out.update({f"defense.{k}": val for k, val in report.items()})
    else:
        model = train(fresh(), x, y, tcfg, device, seed)
    if spec.kind == "filter":
        removed = impl.select(features(model, x, device), y, len(poison.indices))
        prec, rec = precision_recall(removed, poison.indices)
        keep = np.setdiff1d(np.arange(len(y)), removed)
        model = train(fresh(), x[keep], y[keep], tcfg, device, seed)
        out.update({"removed": int(len(removed)), "filter_precision": prec, "filter_recall": rec})
    out["clean_acc"] = accuracy(model, data.x_test, data.y_test, device)
    out["success"] = attack_success(model, poison, data, device, clean_acc_baseline)
    if spec.kind == "detect":
        out.update(_strip(impl, model, poison, data, device))
    return out


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
def adv_log_prob(model, poison: Poison, data: ImageData, device) -> float:
    """Log-probability of the adversarial class on a targeted poison's target image."""
    s = poison.setup
    x = torch.as_tensor(data.x_test[s.target_index : s.target_index + 1]).to(device)
    return float(torch.log_softmax(model.eval()(x), 1)[0, s.adv_class])


def dilution_diagnostic(
    poison: Poison, data: ImageData, pretrained: ConvNet, steps: int, lr: float, set_cfg: TrainConfig, device, seed: int
) -> dict:
    """Does a targeted poison push its target the right way, and does the push survive dilution in the training set?

    From the clean network (the crafting surrogate), read the target's log-probability of the adversarial class
    after continued training on:
      - `poisons_only`: `steps` full-batch SGD steps (lr `lr`) on the perturbed poisons alone, and `bases_only`: the
        same on the unperturbed base images (the control: images of the adversarial class raise it by themselves).
        `gain` = poisons_only - bases_only is what the crafted perturbation adds, in nats;
      - `poisoned_set` / `clean_set`: `set_cfg` training on the whole poisoned / clean training set, where the
        poisons are 1 image in 1/budget; `set_gain` is their difference.
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
        "clean_set": (data.x_train, data.y_train, set_cfg),
    }.items():
        out[name] = adv_log_prob(train(copy.deepcopy(pretrained), x, y, cfg, device, seed), poison, data, device)
    out["gain"] = out["poisons_only"] - out["bases_only"]
    out["set_gain"] = out["poisoned_set"] - out["clean_set"]
    return out


def summarize(cells: list[dict]) -> dict[tuple[str, str], dict]:
    """Mean of every numeric metric per (attack, defense) over trials."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for c in cells:
        groups.setdefault((c["attack"], c["defense"]), []).append(c)
    out = {}
    for key, rows in groups.items():
        keys = {k for r in rows for k, val in r.items() if isinstance(val, (int, float)) and not isinstance(val, bool)}
        out[key] = {
            k: float(np.mean([r[k] for r in rows if r.get(k) is not None]))
            for k in sorted(keys)
            if any(r.get(k) is not None for r in rows)
        }
        out[key]["trials"] = len(rows)
    return out
