"""Study `minimax` (arXiv:2010.12989): learnable weighted minimax risk vs plain PGD adversarial training.

Both trainers (and the TRADES pair when listed) train the same net on the same data and seed; each is evaluated
on clean data, under the uniform PGD attack and under the paper's non-uniform attacks (PGD on the weighted loss,
weighted robust accuracy) for several alpha_pgd; the weight distribution over training is plotted.
"""
from __future__ import annotations

import time

import numpy as np
import torch
from prefect import flow
from prefect.logging import get_run_logger

from flows.common import data_root as _data_root, prepare, publish, run_flow
from tasks.minimax import evaluate_trainer, train_trainer
from tasks.track import study_run
from tenfold.registry import get as get_study
from tenfold.core.claims import claim
from tenfold.components.data.images import load as load_images
from tenfold.studies.minimax.weighted import shift_weights, shifted_accuracy, vulnerable_classes
from tenfold.core.plotting import plt, save, write_csv
from tenfold.core.runtime import atomic_torch_save, fingerprint

TITLE = "Are adversarial examples created equal? A learnable weighted minimax risk for robustness"


def _weights_png(path, hist: list[dict], kind: str):
    fig, ax = plt.subplots(figsize=(6, 4))
    cmap = plt.get_cmap("viridis")
    for i, r in enumerate(hist):
        ax.hist(np.asarray(r["weights"]), bins=40, histtype="step", density=True,
                color=cmap(i / max(1, len(hist) - 1)), label=f"epoch {r['epoch']}")
    ax.set_xlabel("importance weight exp(-alpha * margin)")
    ax.set_ylabel("density")
    ax.set_title(f"{kind}: weight distribution over training")
    ax.legend(fontsize=7)
    return save(fig, path)


@flow(name="minimax")
def minimax_flow(params_path: str = "params.yaml", root: str = ".") -> dict:
    t0 = time.time()
    ctx = prepare("minimax", params_path, root)
    log = get_run_logger()
    p, dev = ctx.params, ctx.device
    data = load_images(p.data.dataset, _data_root(ctx), ctx.seed).subset(p.data.n_train, p.data.n_test, ctx.seed)
    f = lambda a: torch.from_numpy(a).to(dev)  # noqa: E731
    x, y, xt, yt = f(data.x_train), f(data.y_train), f(data.x_test), f(data.y_test)
    with study_run("minimax", {"common": ctx.common, "minimax": p}, stage="minimax", uri=ctx.common.mlflow_uri,
                   lock=ctx.root / "dvc.lock") as run:
        run.set_tags({"data_source": data.source, "device": str(dev)})
        seeds = [ctx.seed + i for i in range(p.train.seeds)]
        # fan-out: every (trainer, seed) pair is one task on the flow's task runner (threads, or Dask)
        trained = {(k, s): train_trainer.submit(k, x, y, p.train, data.num_classes, s,
                                                str(ctx.path("checkpoints", f"{k}_seed{s}.pt")),
                                                fingerprint(k, p.train.model_dump(exclude={"seeds"}),
                                                            p.data.model_dump(), s))
                   for s in seeds for k in p.train.trainers}
        models = {ks: fut.result() for ks, fut in trained.items()}
        evals = {ks: evaluate_trainer.submit(ks[0], m, xt, yt, p.eval, ks[1]) for ks, (m, _) in models.items()}
        per = {ks: fut.result() for ks, fut in evals.items()}
        for (k, s), (_, hist) in models.items():
            for r in hist:
                run.log_metrics({f"{k}.seed{s}.train_loss": r["loss"]}, step=r["epoch"])

        # ---- shifted test distribution: label shift toward the classes the uniform attack hurts most
        # (chosen from every trainer and seed alike, so the choice favours neither trainer)
        pooled = torch.stack([r["uniform_correct"] for r in per.values()]).mean(0)
        shift_cls = vulnerable_classes(pooled, yt, p.eval.shift_classes, data.num_classes)
        sw = shift_weights(yt, shift_cls, p.eval.shift_mass, data.num_classes)
        for r in per.values():
            r["shifted"] = shifted_accuracy(r["uniform_correct"], sw)

        alphas = p.eval.alphas
        trainers = list(p.train.trainers)

        def agg(k, get):
            v = np.array([get(per[(k, s)]) for s in seeds], dtype=float)
            return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0
        res = {k: {"clean": agg(k, lambda r: r["clean"]),
                   "robust": {a: agg(k, lambda r, a=a: r["robust"][a]) for a in alphas},
                   "shifted": agg(k, lambda r: r["shifted"])} for k in trainers}

        a_c = p.eval.claim_alpha
        u, w = res["at"], res["weighted_at"]
        gain = 100 * (w["robust"][a_c][0] - u["robust"][a_c][0])
        uni_drop = 100 * (u["robust"][0.0][0] - w["robust"][0.0][0])
        shift_gain = 100 * (w["shifted"][0] - u["shifted"][0])
        per_seed_gain = [100 * (per[("weighted_at", s)]["robust"][a_c] - per[("at", s)]["robust"][a_c]) for s in seeds]
        claims = [claim("weighted_beats_uniform",
                        f"weighted minimax AT beats plain PGD AT on weighted robust accuracy under the non-uniform "
                        f"attack (alpha_pgd {a_c:g}; measured = gain in points, mean over {len(seeds)} seed(s)), "
                        f"with uniform robust accuracy within {p.eval.uniform_tolerance:g} points (measured drop "
                        f"{uni_drop:.2f})",
                        "significantly improves adversarial accuracy under non-uniform attacks without a "
                        "significant drop under uniform attacks", gain, 0.0, ">",
                        holds=gain > 0 and uni_drop <= p.eval.uniform_tolerance)]
        passed = per[("weighted_at", seeds[0])]["robust"][0.0] >= p.accept_min_robust_acc

        def pm(v):
            return f"{v[0]:.3f} ± {v[1]:.3f}"
        rows = [[k, pm(r["clean"]), *[pm(r["robust"][a]) for a in alphas], pm(r["shifted"])] for k, r in res.items()]
        seed_rows = [[k, s, round(per[(k, s)]["clean"], 4), *[round(per[(k, s)]["robust"][a], 4) for a in alphas],
                      round(per[(k, s)]["shifted"], 4)] for s in seeds for k in trainers]
        write_csv(ctx.path("plots", "robust_vs_alpha.csv"),
                  ["alpha_pgd", *res, *[f"{k}_std" for k in res]],
                  [[a, *[res[k]["robust"][a][0] for k in res], *[res[k]["robust"][a][1] for k in res]]
                   for a in alphas])
        fig, ax = plt.subplots(figsize=(6, 4))
        for k, r in res.items():
            ax.errorbar(alphas, [r["robust"][a][0] for a in alphas], yerr=[r["robust"][a][1] for a in alphas],
                        marker="o", capsize=3, label=k)
        ax.set_xlabel("alpha_pgd of the non-uniform attack (0 = uniform)")
        ax.set_ylabel("weighted robust accuracy")
        ax.set_title(f"{data.name}, eps {p.eval.eps:g}, mean ± std over {len(seeds)} seed(s)")
        ax.legend()
        save(fig, ctx.path("plots", "robust_vs_alpha.png"))
        models = {k: models[(k, seeds[0])] for k in trainers}
        figures = [{"path": "plots/minimax/robust_vs_alpha.png",
                    "caption": "Weighted robust accuracy vs the attacker's alpha_pgd (mean ± std over seeds)"}]
        wq = []
        for k, (_, hist) in models.items():
            if k.startswith("weighted"):
                _weights_png(ctx.path("plots", f"weights_{k}.png"), hist, k)
                figures.append({"path": f"plots/minimax/weights_{k}.png",
                                "caption": f"{k}: distribution of importance weights per epoch"})
                wq += [[k, r["epoch"], *np.quantile(r["weights"], [0.1, 0.5, 0.9]).round(4).tolist(),
                        round(float(np.max(r["weights"])), 4)] for r in hist]
        write_csv(ctx.path("plots", "weight_quantiles.csv"), ["trainer", "epoch", "q10", "median", "q90", "max"], wq)
        notes = [f"{'Reproduced' if c.holds else 'Not reproduced'} at this scale: `{c.id}` gain "
                 f"{gain:.2f} points (per seed: {', '.join(f'{g:.1f}' for g in per_seed_gain)}), uniform drop "
                 f"{uni_drop:.2f} points (means over {len(seeds)} seed(s))." for c in claims]
        notes.append(f"Shifted test distribution (second non-uniform evaluation): label shift putting "
                     f"{p.eval.shift_mass:.0%} of the test mass on classes {shift_cls}, the {len(shift_cls)} classes "
                     f"with the lowest uniform robust accuracy pooled over trainers and seeds; robust accuracy under "
                     f"the uniform PGD attack on that distribution: weighted_at minus at = {shift_gain:.2f} points.")
        notes += [
            f"Data: {data.name} ({data.source}), {len(x)} training and {len(xt)} test images; model {p.train.arch}. "
            f"The paper's MNIST setting is SmallCNN, eps 0.3, 40 PGD steps of 0.01, alpha 0.05, 100 epochs; the CPU "
            f"default trains {p.train.epochs} epochs (SGD lr {p.train.lr:g}, batch {p.train.batch_size}) with eps "
            f"{p.train.eps:g} and {p.train.steps} steps, the budget ramped linearly from 0 over the first "
            f"{p.train.warmup_epochs:g} epochs for both trainers (an eps warm-up the paper does not describe).",
            f"alpha = {p.train.alpha:g} (the code's MNIST default 0.05 makes weights exp(-0.05 m) within 5% of 1, "
            "i.e. almost uniform; the TRADES default alpha 2 is used on CPU).",
            f"Evaluation: {p.eval.steps}-step PGD with {p.eval.restarts} restarts (code: 10 restarts), "
            "weighted robust accuracy = sum(w * correct) / sum(w).",
        ]
        for k, (m, _) in models.items():
            atomic_torch_save(ctx.path("models", f"{k}.pt"), m.state_dict())
        reg = run.log_model(models["weighted_at"][0], "weighted_at", input_example=xt[:2].cpu().numpy(),
                            passed=passed, description="weighted minimax adversarially trained classifier")
        for k, r in res.items():
            run.log_metrics({f"{k}.clean": r["clean"][0], f"{k}.shifted": r["shifted"][0],
                             **{f"{k}.robust_alpha_{a:g}": v[0] for a, v in r["robust"].items()}})
        metrics = {
            "study": "minimax", "arxiv": get_study("minimax").arxiv, "title": TITLE,
            "description": (f"PGD adversarial training vs learnable weighted minimax risk (alpha {p.train.alpha:g}) on "
                            f"{data.name}; uniform and non-uniform (weighted) PGD attacks at eps {p.eval.eps:g}."),
            "claims": [c.as_dict() for c in claims],
            "seeds": seeds,
            "results": {k: {"clean": r["clean"][0], "robust": {str(a): v[0] for a, v in r["robust"].items()},
                            "shifted": r["shifted"][0],
                            "std": {"clean": r["clean"][1], "shifted": r["shifted"][1],
                                    "robust": {str(a): v[1] for a, v in r["robust"].items()}}}
                        for k, r in res.items()},
            "per_seed": {f"{k}/seed{s}": {"clean": r["clean"], "robust": {str(a): v for a, v in r["robust"].items()},
                                          "shifted": r["shifted"]} for (k, s), r in per.items()},
            "shift": {"classes": shift_cls, "mass": p.eval.shift_mass, "gain_points": shift_gain},
            "tables": {"accuracy": {"title": f"Clean, uniform-robust, non-uniform-robust (weighted attack, alpha_pgd) "
                                             f"and shifted-distribution robust accuracy, mean ± std over {len(seeds)} "
                                             f"seed(s)",
                                    "columns": ["trainer", "clean", *[f"alpha_pgd {a:g}" for a in alphas],
                                                f"shifted to {shift_cls}"],
                                    "rows": rows},
                       "per_seed": {"title": "Per seed",
                                    "columns": ["trainer", "seed", "clean", *[f"alpha_pgd {a:g}" for a in alphas],
                                                "shifted"], "rows": seed_rows}},
            "figures": figures, "notes": notes,
            "run": {"mlflow_run_id": run.run_id, "registered_model": f"{reg['name']} v{reg['version']}",
                    "alias_moved": passed, "device": str(dev), "wall_seconds": round(time.time() - t0, 1)},
        }
        return publish(ctx, run, metrics, claims, {"weighted_gain_points": gain}, t0, log)


def main(params_path: str = "params.yaml"):
    return run_flow(minimax_flow, "minimax", params_path)


if __name__ == "__main__":
    main()
