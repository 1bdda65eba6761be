"""Study `depth` (arXiv:2102.11011): recurrent nets vs feed-forward nets at matched effective depth on image
classification: accuracy vs effective depth per family, parameter counts, and agreement of predictions.

Writes metrics/depth.json, plots/depth/, models/depth/ and an MLflow run (registered model: the deepest
recurrent net of the first family).
"""
from __future__ import annotations

import time

import numpy as np
from prefect import flow
from prefect.logging import get_run_logger

from flows.common import data_root, prepare, publish, run_flow
from tasks.depth import train_classifier
from tasks.track import study_run
from tenfold.registry import get as get_study
from tenfold.core.claims import claim
from tenfold.components.data.images import load
from tenfold.studies.depth.models import agreement
from tenfold.core.plotting import line_plot, write_csv
from tenfold.core.runtime import atomic_torch_save, fingerprint

TITLE = "The Uncanny Similarity of Recurrence and Depth: image classification"


@flow(name="depth")
def depth_flow(params_path: str = "params.yaml", root: str = ".") -> dict:
    t0 = time.time()
    ctx = prepare("depth", params_path, root)
    log = get_run_logger()
    p = ctx.params
    data = load(p.data.dataset, data_root(ctx), seed=ctx.seed).subset(p.data.n_train, p.data.n_test, ctx.seed)

    with study_run("depth", {"common": ctx.common, "depth": p}, stage="depth", uri=ctx.common.mlflow_uri,
                   lock=ctx.root / "dvc.lock") as run:
        run.set_tags({"data_source": data.source, "device": str(ctx.device)})
        futures = {}
        for fam in p.families:
            for depth in fam.depths:
                for rec in (True, False):
                    for s in range(p.seeds):
                        name = f"{fam.name}_d{depth}_{'rec' if rec else 'ff'}_s{s}"
                        fp = fingerprint(fam.model_dump(), depth, rec, p.train.model_dump(), p.init, data.source,
                                         len(data.y_train), ctx.seed + s)
                        futures[(fam.name, depth, rec, s)] = train_classifier.submit(
                            fam, depth, rec, data, p.train, p.init, ctx.device, ctx.seed + s,
                            str(ctx.path("checkpoints", f"{name}.pt")), fp)
        res = {k: f.result() for k, f in futures.items()}

        rows, gaps, agreements, figures, curves, family_gap = [], [], [], [], {}, {}
        for fam in p.families:
            n_before = len(gaps)
            accs = {rec: [] for rec in (True, False)}
            for depth in fam.depths:
                r = {rec: [res[(fam.name, depth, rec, s)] for s in range(p.seeds)] for rec in (True, False)}
                a = {rec: float(np.mean([x["acc"] for x in r[rec]])) for rec in (True, False)}
                agree = float(np.mean([agreement(r[True][s]["pred"], r[False][s]["pred"]) for s in range(p.seeds)]))
                gaps.append(abs(a[True] - a[False]))
                agreements.append(agree)
                accs[True].append(a[True])
                accs[False].append(a[False])
                diffs = [r[True][s]["acc"] - r[False][s]["acc"] for s in range(p.seeds)]
                rows.append([fam.name, depth, r[True][0]["iters"], round(a[True], 4), r[True][0]["params"],
                             round(a[False], 4), r[False][0]["params"], round(a[True] - a[False], 4),
                             " / ".join(f"{x:+.3f}" for x in diffs), round(agree, 4)])
                run.log_metrics({f"{fam.name}_recurrent_acc": a[True], f"{fam.name}_feedforward_acc": a[False],
                                 f"{fam.name}_agreement": agree}, step=depth)
            family_gap[fam.name] = float(np.mean(gaps[n_before:]))
            curves[fam.name] = {"depths": fam.depths, "recurrent": accs[True], "feedforward": accs[False]}
            write_csv(ctx.path("plots", f"{fam.name}_acc_vs_depth.csv"), ["depth", "recurrent", "feedforward"],
                      [[d, accs[True][i], accs[False][i]] for i, d in enumerate(fam.depths)])
            line_plot(ctx.path("plots", f"{fam.name}_acc_vs_depth.png"), fam.depths,
                      {"recurrent": accs[True], "feed-forward": accs[False]}, "effective depth", "test accuracy",
                      f"{fam.name} on {data.name}: recurrent vs feed-forward")
            figures.append({"path": f"plots/depth/{fam.name}_acc_vs_depth.png",
                            "caption": f"{fam.name}: test accuracy vs effective depth"})

        mean_gap = float(np.mean(gaps))
        claims = [claim("depth_emulation",
                        "recurrent and feed-forward nets reach similar accuracy at equal effective depth "
                        "(mean absolute accuracy gap over the matched depths, as a fraction)",
                        "recurrent nets closely match feed-forward nets of the same effective depth on CIFAR-10, "
                        "SVHN and EMNIST, with far fewer parameters", mean_gap, p.max_gap, "<=")]
        passed = claims[0].holds
        notes = [f"{'Reproduced' if c.holds else 'Not reproduced'} at this scale: `{c.id}` measured {c.measured:.4f} "
                 f"(target {c.comparison} {c.target})." for c in claims]
        notes.append("Mean |recurrent - feed-forward| accuracy gap per family: " + ", ".join(
            f"{k} {v:.4f}" for k, v in family_gap.items()) + "; the claim averages over all matched depths.")
        notes.append(f"Mean agreement of predictions between recurrent and feed-forward nets at equal depth: "
                     f"{np.mean(agreements):.3f}.")
        if data.name != "cifar10":
            notes.append(f"Data: {data.source} ({len(data.y_train)} train / {len(data.y_test)} test) instead of "
                         f"CIFAR-10/SVHN/EMNIST; narrow nets trained for {p.train.epochs} epochs instead of 200.")
        if p.init != "default":
            notes.append("Init: He (Kaiming) init replaces PyTorch's default so the no-BN nets train within a few "
                         "CPU epochs; the paper profile uses the default init of the official code.")

        first = p.families[0]
        main = res[(first.name, max(first.depths), True, 0)]
        atomic_torch_save(ctx.path("models", f"{first.name}_recurrent_d{main['depth']}.pt"), main["model"].state_dict())
        reg = run.log_model(main["model"], f"{first.name}_recurrent_d{main['depth']}", input_example=data.x_test[:2],
                            passed=passed, description=f"recurrent {first.name} net, effective depth {main['depth']}")
        metrics = {
            "study": "depth", "arxiv": get_study("depth").arxiv, "title": TITLE,
            "description": ("Recurrent nets (one block applied k times, shared weights) and feed-forward twins "
                            "(k distinct blocks) of the same effective depth are trained identically on "
                            f"{data.name}; accuracy, parameters and prediction agreement are compared per depth."),
            "claims": [c.as_dict() for c in claims],
            "curves": curves, "mean_abs_gap": mean_gap, "family_gap": family_gap, "mean_agreement": float(np.mean(agreements)),
            "tables": {"depth": {"title": f"Recurrent vs feed-forward at matched effective depth ({data.name}, "
                                          f"mean over {p.seeds} seed(s))",
                                 "columns": ["family", "effective depth", "iterations", "recurrent acc",
                                             "recurrent params", "feed-forward acc", "feed-forward params",
                                             "rec - ff", "rec - ff per seed", "agreement"], "rows": rows}},
            "figures": figures, "notes": notes,
            "run": {"mlflow_run_id": run.run_id, "device": str(ctx.device), "data_source": data.source,
                    "registered_model": f"{reg['name']} v{reg['version']}", "alias_moved": passed,
                    "wall_seconds": round(time.time() - t0, 1)},
        }
        return publish(ctx, run, metrics, claims, {"mean_abs_gap": mean_gap}, t0, log)


def main(params_path: str = "params.yaml"):
    return run_flow(depth_flow, "depth", params_path)


if __name__ == "__main__":
    main()
