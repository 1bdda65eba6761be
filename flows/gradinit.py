"""Study `gradinit` (arXiv:2102.08098): GradInit vs Kaiming on no-BN VGG and ResNet, and the Post-LN Transformer
trained with Adam and no warmup, default init vs GradInit, over a grid of learning rates.

Writes metrics/gradinit.json, plots/gradinit/ (accuracy curves, learned scale per layer, Transformer grid),
models/gradinit/ and an MLflow run whose registered model is the GradInit-initialised VGG.
"""
from __future__ import annotations

import time
from dataclasses import replace

import matplotlib.pyplot as plt
import numpy as np
from prefect import flow
from prefect.logging import get_run_logger

from flows.common import data_root, prepare, publish, run_flow
from tasks.gradinit import image_run, transformer_init, transformer_run
from tasks.track import study_run
from tenfold.registry import get as get_study
from tenfold.core.claims import claim
from tenfold.components.data.images import load
from tenfold.studies.gradinit.train import standardize
from tenfold.core.plotting import line_plot, save, write_csv
from tenfold.core.runtime import atomic_torch_save

TITLE = "GradInit: Learning to Initialize Neural Networks for Stable and Efficient Training"
INITS = ("kaiming", "gradinit")


def _scale_plot(path, runs: dict, archs: list[str]):
    fig, axes = plt.subplots(len(archs), 1, figsize=(8, 2.8 * len(archs)), squeeze=False)
    for ax, arch in zip(axes[:, 0], archs):
        sc = {k: v for k, v in runs[(arch, "gradinit", 0)]["scales"].items() if k.endswith("weight")}
        ax.bar(range(len(sc)), list(sc.values()))
        ax.axhline(1.0, color="grey", lw=1, ls="--")
        ax.set_xticks(range(len(sc)), [k.replace(".weight", "") for k in sc], rotation=90, fontsize=6)
        ax.set_ylabel("learned scale")
        ax.set_title(f"{arch}: GradInit scale of each weight tensor (1 = Kaiming)")
    return save(fig, path)


@flow(name="gradinit")
def gradinit_flow(params_path: str = "params.yaml", root: str = ".") -> dict:
    t0 = time.time()
    ctx = prepare("gradinit", params_path, root)
    log = get_run_logger()
    p = ctx.params
    im, tr = p.images, p.transformer
    data = load(im.data.dataset, data_root(ctx), seed=ctx.seed).subset(im.data.n_train, im.data.n_test, ctx.seed)
    x_train, x_test = standardize(data.x_train, data.x_test)  # as the paper's Normalize transform
    data = replace(data, x_train=x_train, x_test=x_test)

    with study_run("gradinit", {"common": ctx.common, "gradinit": p}, stage="gradinit", uri=ctx.common.mlflow_uri,
                   lock=ctx.root / "dvc.lock") as run:
        run.set_tags({"data_source": data.source, "device": str(ctx.device)})
        futures = {}
        if im.enabled:
            for arch in im.models:
                for init in INITS:
                    for s in range(im.seeds):
                        futures[(arch, init, s)] = image_run.submit(arch, init, data, im, ctx.device, ctx.seed + s)
        tinit = transformer_init.submit(tr, ctx.device, ctx.seed) if tr.enabled else None
        tfut = {("default", lr): transformer_run.submit("default", lr, tr, ctx.device, ctx.seed)
                for lr in tr.train.lrs} if tr.enabled else {}
        tgi = tinit.result() if tinit is not None else None
        if tgi is not None:  # GradInit once; every learning rate starts from the same rescaled state
            tfut.update({("gradinit", lr): transformer_run.submit("gradinit", lr, tr, ctx.device, ctx.seed, tgi["state"])
                         for lr in tr.train.lrs})
        runs = {k: f.result() for k, f in futures.items()}
        truns = {k: f.result() for k, f in tfut.items()}

        # ---- image results: first-epoch and final accuracy, mean over seeds
        summary, rows, figures, tables = {}, [], [], {}
        for arch in (im.models if im.enabled else []):
            for init in INITS:
                hs = [runs[(arch, init, s)]["history"] for s in range(im.seeds)]
                first = float(np.mean([h[0]["test_acc"] for h in hs]))
                final = float(np.mean([h[-1]["test_acc"] for h in hs]))
                first_loss = float(np.mean([h[0]["test_loss"] for h in hs]))
                final_loss = float(np.mean([h[-1]["test_loss"] for h in hs]))
                summary[f"{arch}/{init}"] = {"first_epoch_acc": first, "final_acc": final,
                                             "first_epoch_loss": first_loss, "final_loss": final_loss}
                rows.append([arch, init, round(first_loss, 4), round(first, 4), round(final_loss, 4), round(final, 4),
                             round(float(np.mean([runs[(arch, init, s)]["gradinit_seconds"] for s in range(im.seeds)])), 1)])
                run.log_metrics({f"{arch}_{init}_first_epoch_acc": first, f"{arch}_{init}_final_acc": final})
                for r in hs[0]:
                    run.log_metrics({f"{arch}_{init}_test_acc": r["test_acc"]}, step=r["epoch"])
            epochs = [r["epoch"] for r in runs[(arch, "kaiming", 0)]["history"]]
            curves = {init: [r["test_acc"] for r in runs[(arch, init, 0)]["history"]] for init in INITS}
            n = min(len(v) for v in curves.values())
            write_csv(ctx.path("plots", f"{arch}_test_acc.csv"), ["epoch", *INITS],
                      [[epochs[i], *[curves[k][i] for k in INITS]] for i in range(n)])
            line_plot(ctx.path("plots", f"{arch}_test_acc.png"), epochs[:n], {k: v[:n] for k, v in curves.items()},
                      "epoch", "test accuracy", f"{arch} without BN: Kaiming vs GradInit (seed 0)")
            figures.append({"path": f"plots/gradinit/{arch}_test_acc.png",
                            "caption": f"{arch} without batch norm: test accuracy per epoch"})
        if im.enabled:
            _scale_plot(ctx.path("plots", "scales.png"), runs, im.models)
            figures.append({"path": "plots/gradinit/scales.png", "caption": "Learned GradInit scale of every layer"})
            for arch in im.models:
                sc = runs[(arch, "gradinit", 0)]["scales"]
                write_csv(ctx.path("plots", f"{arch}_scales.csv"), ["parameter", "scale"], [[k, v] for k, v in sc.items()])
            tables["images"] = {"title": f"No-BN nets on {data.name}: Kaiming vs GradInit (mean over {im.seeds} seed(s))",
                                "columns": ["model", "init", "epoch-1 test loss", "epoch-1 test acc", "final test loss",
                                            "final test acc", "GradInit seconds"], "rows": rows}

        # ---- Post-LN Transformer grid
        grid = {f"{init}@{lr:g}": dict(r) for (init, lr), r in truns.items()}
        if tr.enabled:
            write_csv(ctx.path("plots", "postln_scales.csv"), ["parameter", "scale"],
                      [[k, v] for k, v in tgi["scales"].items()])
            fig, ax = plt.subplots(figsize=(10, 3.2))
            ax.bar(range(len(tgi["scales"])), list(tgi["scales"].values()))
            ax.axhline(1.0, color="grey", lw=1, ls="--")
            ax.set_xticks(range(len(tgi["scales"])), list(tgi["scales"]), rotation=90, fontsize=5)
            ax.set_ylabel("learned scale")
            ax.set_title("Post-LN Transformer: GradInit scale of every tensor (1 = default init)")
            save(fig, ctx.path("plots", "postln_scales.png"))
            figures.append({"path": "plots/gradinit/postln_scales.png",
                            "caption": "Post-LN Transformer: learned GradInit scale of every parameter tensor"})
            lrs = tr.train.lrs
            accs = {init: [truns[(init, lr)]["final_test_acc"] for lr in lrs] for init in ("default", "gradinit")}
            write_csv(ctx.path("plots", "postln_grid.csv"), ["lr", "default", "gradinit"],
                      [[lr, accs["default"][i], accs["gradinit"][i]] for i, lr in enumerate(lrs)])
            fig, ax = plt.subplots(figsize=(6, 4))
            for init, ys in accs.items():
                ax.semilogx(lrs, ys, marker="o", label=init)
            ax.axhline(tr.train.trains_threshold, color="grey", ls="--", lw=1, label="'trains' threshold")
            ax.set_xlabel("Adam learning rate (no warmup)")
            ax.set_ylabel("test token accuracy")
            ax.set_title(f"Post-LN Transformer, {tr.model.layers} layers, task '{tr.task.task}'")
            ax.legend()
            save(fig, ctx.path("plots", "postln_grid.png"))
            figures.append({"path": "plots/gradinit/postln_grid.png",
                            "caption": "Post-LN Transformer without warmup: final accuracy per learning rate"})
            tables["postln"] = {"title": "Post-LN Transformer, Adam without warmup: final test token accuracy",
                                "columns": ["lr", "default init acc", "default loss first -> last", "default",
                                            "GradInit acc", "GradInit loss first -> last", "GradInit"],
                                "rows": [[lr, *[x for init in ("default", "gradinit") for x in (
                                    round(truns[(init, lr)]["final_test_acc"], 4),
                                    f"{truns[(init, lr)]['initial_loss']:.3f} -> {truns[(init, lr)]['final_train_loss']:.3f}",
                                    ("trains" if truns[(init, lr)]["trains"] else "fails")
                                    + (", diverged" if truns[(init, lr)]["diverged"] else ""))]] for lr in lrs]}
            rescued = [lr for lr in lrs if not truns[("default", lr)]["trains"] and truns[("gradinit", lr)]["trains"]]
            hurt = [lr for lr in lrs if truns[("default", lr)]["trains"] and not truns[("gradinit", lr)]["trains"]]
            diverged = {init: [lr for lr in lrs if truns[(init, lr)]["diverged"]] for init in ("default", "gradinit")}
        else:
            rescued, hurt, diverged = [], [], {}

        # ---- claims
        vgg_gap = (summary["vgg/gradinit"]["first_epoch_acc"] - summary["vgg/kaiming"]["first_epoch_acc"]
                   if "vgg/kaiming" in summary else None)
        claims = [
            claim("gradinit_first_epoch",
                  "GradInit's first-epoch test accuracy is above Kaiming's on the VGG without batch norm "
                  "(GradInit minus Kaiming, accuracy points as a fraction)",
                  "VGG-19 w/o BN on CIFAR-10: about 29% (Kaiming) vs 49% (GradInit) after epoch 1 [unverified recall]",
                  vgg_gap, p.first_epoch_margin, ">"),
            claim("postln_no_warmup",
                  "at some learning rate the default-init Post-LN Transformer (Adam, no warmup) fails to train while "
                  "the GradInit-initialised one trains (number of such learning rates in the grid)",
                  "GradInit trains the Post-LN Transformer on IWSLT'14 without warmup", len(rescued) if tr.enabled else None,
                  1, ">="),
        ]
        passed = bool(vgg_gap is not None and vgg_gap > p.first_epoch_margin)

        notes = [f"{'Reproduced' if c.holds else 'Not reproduced'} at this scale: `{c.id}` measured "
                 f"{'n/a' if c.measured is None else f'{c.measured:.3f}'} (target {c.comparison} {c.target})."
                 for c in claims]
        if data.name != "cifar10":
            notes.append(f"Data: {data.source} ({len(data.y_train)} train / {len(data.y_test)} test) instead of "
                         "CIFAR-10; networks are narrower/shallower than VGG-19 and ResNet-110 and train for a few "
                         "epochs, and GradInit runs fewer iterations than the paper's 390 (see params.yaml).")
        if tr.enabled:
            notes.append(f"Post-LN Transformer: encoder-only, {tr.model.layers} layers, on the generated "
                         f"'{tr.task.task}' task instead of the IWSLT'14 encoder-decoder; a run 'trains' when its "
                         f"held-out token accuracy reaches {tr.train.trains_threshold}. Learning rates where "
                         f"GradInit rescued a failing default run: {rescued or 'none'}; where the default run trained and "
                         f"the GradInit run did not: {hurt or 'none'}. Diverged (loss non-finite or the mean loss of the "
                         f"last {tr.train.diverge_window} steps >= {1 - tr.train.diverge_tolerance:g} x min(first "
                         f"step's loss, ln {tr.task.vocab}), i.e. no progress beyond a uniform guess): default {diverged['default'] or 'none'}, "
                         f"GradInit {diverged['gradinit'] or 'none'}. GradInit moved {tgi['scales_moved']} of "
                         f"{len(tgi['scales'])} scales in {tr.init.iters} iterations (loss {tgi['loss_first']:.3f} -> "
                         f"{tgi['loss_last']:.3f}); range per kind: "
                         + ", ".join(f"{k} {v['min']:.2f}-{v['max']:.2f}" for k, v in tgi["scale_summary"].items()) + ".")
        for arch in (im.models if im.enabled else []):
            r = runs[(arch, "gradinit", 0)]
            notes.append(f"{arch}: GradInit took {r['gradinit_seconds']:.1f}s for {len(r['scales'])} scales; "
                         f"{100 * r['constraint_share']:.0f}% of its iterations were constraint steps.")
        model_path = None
        main = runs.get(("vgg", "gradinit", 0)) or (next(iter(runs.values())) if runs else None)
        reg = None
        if main is not None:
            model_path = ctx.path("models", f"{main['arch']}_gradinit.pt")
            atomic_torch_save(model_path, main["model"].state_dict())
            x_ex = data.x_test[:2]
            reg = run.log_model(main["model"], f"{main['arch']}_gradinit", input_example=x_ex, passed=passed,
                                description=f"{main['arch']} without BN, GradInit-initialised and trained on {data.name}")
        metrics = {
            "study": "gradinit", "arxiv": get_study("gradinit").arxiv, "title": TITLE,
            "description": ("GradInit learns one scale per parameter tensor so that one simulated optimiser step "
                            "lowers the loss most under a gradient-norm bound. Kaiming vs GradInit on no-BN VGG and "
                            "ResNet, and default init vs GradInit for a Post-LN Transformer trained with Adam "
                            "without warmup."),
            "claims": [c.as_dict() for c in claims],
            "images": summary,
            "scales": {f"{a}": runs[(a, "gradinit", 0)]["scales"] for a in (im.models if im.enabled else [])},
            "postln": grid,
            "postln_init": ({k: v for k, v in tgi.items() if k != "state"} if tgi is not None else None),
            "tables": tables, "figures": figures, "notes": notes,
            "run": {"mlflow_run_id": run.run_id, "device": str(ctx.device), "data_source": data.source,
                    "registered_model": f"{reg['name']} v{reg['version']}" if reg else None, "alias_moved": passed,
                    "wall_seconds": round(time.time() - t0, 1)},
        }
        return publish(ctx, run, metrics, claims, {}, t0, log)


def main(params_path: str = "params.yaml"):
    return run_flow(gradinit_flow, "gradinit", params_path)


if __name__ == "__main__":
    main()
