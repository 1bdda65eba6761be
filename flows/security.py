"""Study `security` (arXiv:2012.10544, the dataset-security survey made executable).

`craft_poisons_flow` (DVC stage `craft_poisons`) trains the clean network and crafts every attack's poisons for
every setup (plus adaptive gradient matching with a defense's mixing in the loop); the files under
<data_root>/security/poisons are DVC outputs reused, not recrafted, by `security_flow` and `augmentation_flow`.
`security_flow` runs the attack x defense grid of the benchmark protocol and writes metrics/security.json (taxonomy
tables generated from the registry, the grid table, the heat map), one MLflow parent run with a nested run per cell.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from prefect import flow
from prefect.logging import get_run_logger

from flows.common import StudyContext, data_root, prepare, publish, run_flow
from tasks.security import craft_poison, dilution_check, log_cells, run_cell, train_clean
from tasks.track import study_run
from tenfold.registry import get as get_study
from tenfold.studies.security.taxonomy import taxonomy_tables
from tenfold.core.claims import claim
from tenfold.core.plotting import write_csv
from tenfold.core.runtime import atomic_write_json, md5_file, study_seed
from tenfold.studies.security import benchmark
from tenfold.studies.security.plots import heatmap

TITLE = "Dataset Security for Machine Learning: poisoning, backdoors and defenses (benchmark)"


def poison_dir(ctx: StudyContext) -> Path:
    return data_root(ctx) / "security" / "poisons"


@flow(name="craft_poisons")
def craft_poisons_flow(params_path: str = "params.yaml", root: str = ".") -> dict:
    """Clean network + crafted poisons for every (attack, trial); writes manifest.json beside them."""
    ctx = prepare("security", params_path, root)
    p, out = ctx.params, poison_dir(ctx)
    out.mkdir(parents=True, exist_ok=True)
    data = benchmark.load_data(p.data, data_root(ctx), ctx.seed)
    surrogate, acc = train_clean.submit(data, p.victim, ctx.device, ctx.seed, str(out / "clean_net.pt")).result()
    jobs = [(a, None) for a in p.craft.attacks]
    if "gradient_matching" in p.craft.attacks:
        jobs += [(f"gradient_matching+{m}", m) for m in p.craft.adaptive]
    futures = []
    for label, mix_name in jobs:
        mix = benchmark.mixer(mix_name, p.defense, data.num_classes) if mix_name else None
        for t in range(p.craft.trials):
            futures.append(craft_poison.submit(benchmark.base_attack(label), data, surrogate, p.budget, p.craft, t,
                                               ctx.seed, ctx.device, str(out / f"{label}_{t}.npz"), mix, label))
    crafted = [f.result() for f in futures]
    manifest = {"dataset": p.data.dataset, "source": data.source, "clean_acc": acc, "clean_net": "clean_net.pt",
                "poisons": crafted}
    atomic_write_json(out / "manifest.json", manifest)
    get_run_logger().info("crafted %d poisons into %s", len(crafted), out)
    return manifest


def load_crafted(ctx: StudyContext, security_params):
    """Data, the clean network and the manifest written by craft_poisons (a clear error if it has not run)."""
    out = poison_dir(ctx)
    path = out / "manifest.json"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no crafted poisons; run `python -m flows.cli run craft_poisons` first")
    manifest = json.loads(path.read_text())
    data = benchmark.load_data(security_params.data, data_root(ctx), study_seed(ctx.common.seed, "security"))
    net = benchmark.new_model(data, security_params.victim, 0)
    net.load_state_dict(torch.load(out / manifest["clean_net"], weights_only=True))
    for entry in manifest["poisons"]:
        entry["path"] = str(out / Path(entry["path"]).name)
    return data, net.eval(), manifest


def grid_jobs(p, poisons: list[dict]) -> list[tuple[dict, str, str | None, str]]:
    """(poison entry, defense, victim kind or None for the registry's, column label) of every cell: each attack
    of `craft.attacks` x `grid_defenses` (the `none` defense once per victim kind), then the `grid_focus` blocks."""
    jobs, seen = [], set()

    def add(e, d):
        kinds = [(v, f"none[{v}]") for v in p.victims] if d == "none" else [(None, d)]
        for kind, label in kinds:
            if (e["path"], label) not in seen:
                seen.add((e["path"], label))
                jobs.append((e, d, kind, label))
    for e in poisons:
        if e["attack"] in p.craft.attacks:
            for d in p.grid_defenses:
                add(e, d)
    for g in p.grid_focus:
        for e in poisons:
            if e["attack"] in g.attacks:
                for d in g.defenses:
                    add(e, d)
    return jobs


@flow(name="security")
def security_flow(params_path: str = "params.yaml", root: str = ".") -> dict:
    t0 = time.time()
    ctx = prepare("security", params_path, root)
    log = get_run_logger()
    p = ctx.params
    data, net, manifest = load_crafted(ctx, p)
    jobs = grid_jobs(p, manifest["poisons"])
    attacks = list(dict.fromkeys(e["attack"] for e, *_ in jobs))
    columns = list(dict.fromkeys(label for _, _, _, label in jobs))
    with study_run("security", {"common": ctx.common, "security": p}, stage="security",
                   uri=ctx.common.mlflow_uri, lock=ctx.root / "dvc.lock") as run:
        run.set_tags({"data_source": manifest["source"], "device": str(ctx.device)})
        run.log_dataset("poisons", md5_file(poison_dir(ctx) / "manifest.json"), str(poison_dir(ctx)), "training")
        futures = [run_cell.submit(e["path"], d, data, p.victim, p.defense, net, ctx.device, ctx.seed + 7,
                                   manifest["clean_acc"], None, label, kind) for e, d, kind, label in jobs]
        diag_futs = [dilution_check.submit(e["path"], data, p.victim, p.diagnostic, net, ctx.device, ctx.seed + 7)
                     for e in manifest["poisons"] if p.diagnostic.enabled
                     and benchmark.base_attack(e["attack"]) == "gradient_matching"]
        cells = [f.result() for f in futures]
        diag = [f.result() for f in diag_futs]
        log_cells(run, cells)
        summary = benchmark.summarize(cells)
        gm = summary.get(("gradient_matching", "none[from-scratch]"), {}).get("success")
        gm_ft = summary.get(("gradient_matching", "none[fine-tune]"), {}).get("success")
        claims = [claim("gradient_matching_success",
                        "with no defense, gradient matching (Witches' Brew) makes the victim, retrained from "
                        "scratch, classify the target as the adversarial class (fraction of targets)",
                        "45% from scratch, CIFAR-10 ResNet-18, 1% budget (poisoning benchmark)", gm,
                        p.gm_success_target, ">=")]
        cols = ["attack", "defense", "victim", "trials", "clean_acc", "success", "removed", "filter_precision",
                "filter_recall", "strip_detection", "strip_false_alarms", "success_after_detection"]
        rows = []
        for (a, d), m in summary.items():
            victim = next(c["victim"] for c in cells if c["attack"] == a and c["defense"] == d)
            rows.append([a, d, victim, m["trials"], *[None if m.get(k) is None else round(m[k], 4)
                                                       for k in cols[4:]]])
        write_csv(ctx.path("plots", "grid.csv"), cols, rows)
        heatmap(ctx.path("plots", "success_heatmap.png"), attacks, columns,
                {k: m.get("success") for k, m in summary.items()},
                f"attack success ({manifest['dataset']}, eps {p.budget.eps}/255, {p.budget.poison_fraction:.0%})")
        heatmap(ctx.path("plots", "accuracy_heatmap.png"), attacks, columns,
                {k: m.get("clean_acc") for k, m in summary.items()}, "clean validation accuracy")
        passed = manifest["clean_acc"] >= p.accept_min_clean_acc
        notes = [f"{'Reproduced' if c.holds else 'Not reproduced'} at this scale: `{c.id}` measured "
                 f"{'n/a' if c.measured is None else f'{c.measured:.3f}'} (target {c.comparison} {c.target})."
                 for c in claims]
        notes += [
            f"CPU profile: {manifest['dataset']} ({len(data.y_train)} training images, source {manifest['source']}), "
            f"a small GroupNorm ConvNet victim instead of ResNet-18 on CIFAR-10, {p.craft.trials} setups per attack "
            "instead of 100; success rates are therefore coarse (steps of 1/trials).",
            "Victims: under no defense every attack is measured twice, `none[from-scratch]` (a new network, new "
            "seed, same recipe as the clean network) and `none[fine-tune]` (the clean pre-trained network's last "
            "layer retrained on the poisoned set). Under the other defenses the registry's victim is used: "
            "fine-tuning for the transfer attacks (feature collision, hidden trigger), from scratch for the rest.",
            f"Gradient matching, fine-tuned victim: {'n/a' if gm_ft is None else f'{gm_ft:.3f}'} of targets.",
            "Label flipping is an availability attack: its `success` is the drop in clean accuracy relative to the "
            "clean network.",
        ]
        tables = taxonomy_tables()
        tables["grid"] = {"title": "Attack x defense grid (mean over setups)", "columns": cols, "rows": rows}
        if diag:
            dcols = ["poison", "setup", "start", "poisons_only", "bases_only", "gain", "poisoned_set", "clean_set",
                     "set_gain"]
            tables["dilution"] = {
                "title": (f"Gradient matching, dilution check: log-probability of the adversarial class on the target "
                          f"after {p.diagnostic.steps} full-batch SGD steps on the poisons alone vs their unperturbed "
                          f"bases, and after {p.diagnostic.set_epochs} epochs on the whole poisoned vs clean set "
                          f"(from the clean network; gains in nats)"),
                "columns": dcols,
                "rows": [[d["attack"], d["trial_seed"], *[round(d[k], 3) for k in dcols[2:]]] for d in diag]}
            gain, set_gain, clean_lp = (sum(d[k] for d in diag) / len(diag) for k in ("gain", "set_gain", "clean_set"))
            notes.append(
                f"Dilution check (table `dilution`): alone, the crafted poisons raise the target's log-probability of "
                f"the adversarial class by {gain:.2f} nats more than their unperturbed bases, so the gradient "
                f"matching step works; inside the whole training set ({len(data.y_train)} images, "
                f"{diag[0]['n_poison']} poisons) the gain falls to {set_gain:.2f} nats, while the target's "
                f"log-probability of the adversarial class stays near {clean_lp:.1f} (a flip needs about -0.7). "
                "The attack is lost to dilution, not to a wrong gradient.")
            for d in diag:
                key = f"dilution.{d['attack'].replace('+', '_')}.{d['trial_seed']}"
                run.log_metrics({f"{key}.gain": d["gain"],
                                 f"{key}.set_gain": d["set_gain"]})
        reg = run.log_model(net, "clean_convnet", input_example=data.x_test[:2], passed=passed,
                            description="clean ConvNet: the attacker's surrogate and the fine-tuning victims' start")
        metrics = {
            "study": "security", "arxiv": get_study("security").arxiv, "title": TITLE,
            "description": (f"Every registered attack ({', '.join(attacks)}) against the defenses "
                            f"({', '.join(columns)}) under one protocol: {p.craft.trials} seeded setups, "
                            f"eps {p.budget.eps}/255, {p.budget.poison_fraction:.1%} poisons, "
                            f"{p.budget.patch_size}px trigger."),
            "claims": [c.as_dict() for c in claims], "tables": tables,
            "figures": [{"path": "plots/security/success_heatmap.png", "caption": "Attack success per cell"},
                        {"path": "plots/security/accuracy_heatmap.png", "caption": "Clean accuracy per cell"}],
            "notes": notes, "cells": cells, "dilution": diag, "clean_acc": manifest["clean_acc"],
            "run": {"mlflow_run_id": run.run_id, "registered_model": f"{reg['name']} v{reg['version']}",
                    "alias_moved": passed, "device": str(ctx.device), "wall_seconds": round(time.time() - t0, 1)},
        }
        return publish(ctx, run, metrics, claims, {"gradient_matching_success": gm or 0.0}, t0, log)


def main(params_path: str = "params.yaml"):
    return run_flow(security_flow, "security", params_path)


def main_craft(params_path: str = "params.yaml"):
    return run_flow(craft_poisons_flow, "security", params_path)


if __name__ == "__main__":
    main()
