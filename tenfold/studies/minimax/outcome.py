"""From measured accuracies of the minimax trainers to the study's claim, headline, tables, notes and figures
(no training here)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tenfold.core.claims import claim
from tenfold.core.outcome import Outcome
from tenfold.core.plotting import plt, save, write_csv
from tenfold.studies.minimax.params import MinimaxParams


@dataclass
class Measured:
    """What the minimax flow measured."""

    per: dict[tuple[str, int], dict]  # (trainer, seed) -> {"clean", "robust": {alpha_pgd: acc}, "shifted"}
    seeds: list[int]  # training seeds, in order (the first one's models are saved and registered)
    histories: dict[str, list[dict]]  # trainer -> per-epoch records of the first seed ("epoch", "loss", "weights")
    shift_classes: list[int]  # classes of the shifted test distribution
    data_name: str
    data_source: str
    n_train: int
    n_test: int


def _agg(values: list[float]) -> tuple[float, float]:
    v = np.array(values, dtype=float)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def aggregate(p: MinimaxParams, m: Measured) -> dict[str, dict]:
    """Per trainer: (mean, std over seeds) of clean, robust per alpha_pgd and shifted accuracy."""

    def agg(k, get):
        return _agg([get(m.per[(k, s)]) for s in m.seeds])

    return {
        k: {
            "clean": agg(k, lambda r: r["clean"]),
            "robust": {a: agg(k, lambda r, a=a: r["robust"][a]) for a in p.eval.alphas},
            "shifted": agg(k, lambda r: r["shifted"]),
        }
        for k in p.train.trainers
    }


def seed_interval(values: list[float], level: float = 0.95) -> tuple[float, float] | None:
    """Student-t interval of the mean over seeds (None with fewer than 2 seeds)."""
    from scipy.stats import t as student_t

    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return None
    half = float(student_t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))
    return float(v.mean()) - half, float(v.mean()) + half


def _pm(v: tuple[float, float]) -> str:
    return f"{v[0]:.3f} ± {v[1]:.3f}"


def px(v: float) -> str:
    """A budget in pixel units: `8/255` when it is a whole number of 8-bit levels, else the number."""
    k = v * 255
    return f"{round(k)}/255" if abs(k - round(k)) < 1e-6 and round(k) > 0 else f"{v:g}"


# the official code's settings (huiminzeng/WeightedTraining_AAAI, AT_base), by dataset family
PAPER_SETTING = {
    "cifar10": "ResNet-18, eps 8/255, 10 PGD steps of 2/255, alpha 0.5, SGD lr 0.2, batch 128, 100 epochs; "
    "evaluation 20 PGD steps of 0.0031 with 10 restarts",
    "digits": "SmallCNN, eps 0.3, 40 PGD steps of 0.01, alpha 0.05, lr 0.01, 100 epochs; evaluation 40 PGD steps "
    "of 0.01 with 10 restarts",
}


def paper_setting(data_name: str) -> str:
    return PAPER_SETTING["cifar10" if data_name.startswith("cifar") else "digits"]


def build(p: MinimaxParams, m: Measured) -> Outcome:
    res, seeds, per, alphas, a_c = aggregate(p, m), m.seeds, m.per, p.eval.alphas, p.eval.claim_alpha
    trainers, shift_cls = list(p.train.trainers), m.shift_classes
    u, w = res["at"], res["weighted_at"]
    gain = 100 * (w["robust"][a_c][0] - u["robust"][a_c][0])
    uni_drop = 100 * (u["robust"][0.0][0] - w["robust"][0.0][0])
    shift_gain = 100 * (w["shifted"][0] - u["shifted"][0])
    per_seed_gain = [100 * (per[("weighted_at", s)]["robust"][a_c] - per[("at", s)]["robust"][a_c]) for s in seeds]
    per_seed_drop = [100 * (per[("at", s)]["robust"][0.0] - per[("weighted_at", s)]["robust"][0.0]) for s in seeds]
    gain_ci, drop_ci = seed_interval(per_seed_gain), seed_interval(per_seed_drop)
    ci = lambda c: "" if c is None else f", 95% t-interval over seeds [{c[0]:.1f}, {c[1]:.1f}]"  # noqa: E731
    claims = [
        claim(
            "weighted_beats_uniform",
            f"weighted minimax AT beats plain PGD AT on weighted robust accuracy under the non-uniform "
            f"attack (alpha_pgd {a_c:g}; measured = gain in points, mean over {len(seeds)} seed(s)), "
            f"with uniform robust accuracy within {p.eval.uniform_tolerance:g} points (measured drop "
            f"{uni_drop:.2f})",
            "significantly improves adversarial accuracy under non-uniform attacks without a "
            "significant drop under uniform attacks",
            gain,
            0.0,
            ">",
            holds=gain > 0 and uni_drop <= p.eval.uniform_tolerance,
        )
    ]
    t = p.train
    notes = [
        f"{'Reproduced' if c.holds else 'Not reproduced'} at this scale: `{c.id}` gain "
        f"{gain:.2f} points (per seed: {', '.join(f'{g:.1f}' for g in per_seed_gain)}{ci(gain_ci)}), uniform "
        f"drop {uni_drop:.2f} points (per seed: {', '.join(f'{g:.1f}' for g in per_seed_drop)}{ci(drop_ci)}; "
        f"means over {len(seeds)} seed(s))."
        for c in claims
    ]
    notes += [
        f"Shifted test distribution (second non-uniform evaluation): label shift putting "
        f"{p.eval.shift_mass:.0%} of the test mass on classes {shift_cls}, the {len(shift_cls)} classes "
        f"with the lowest uniform robust accuracy pooled over trainers and seeds; robust accuracy under "
        f"the uniform PGD attack on that distribution: weighted_at minus at = {shift_gain:.2f} points.",
        f"Data: {m.data_name} ({m.data_source}), {m.n_train} training and {m.n_test} test images; model {t.arch}"
        f"{' (inputs standardised per channel inside the net)' if t.normalize else ''}. The code's setting for "
        f"this data: {paper_setting(m.data_name)}. This run trains {t.epochs} epochs (SGD lr {t.lr:g}, {t.schedule} "
        f"schedule, batch {t.batch_size}{', crop and flip' if t.augment else ''}) with eps {px(t.eps)} and "
        f"{t.steps} PGD steps of {px(t.step_size)}"
        + (
            f", the budget ramped linearly from 0 over the first {t.warmup_epochs:g} epoch(s) for both trainers "
            "(an eps warm-up the paper does not describe)."
            if t.warmup_epochs > 0
            else "."
        ),
        f"alpha = {t.alpha:g} for the weighted trainer (the code's defaults: 0.5 for CIFAR-10 AT, 0.05 for MNIST, "
        "2 for TRADES).",
        f"Evaluation: {p.eval.steps}-step PGD of {px(p.eval.step_size)} at eps {px(p.eval.eps)} with "
        f"{p.eval.restarts} restart(s) (code: 10 restarts), weighted robust accuracy = sum(w * correct) / sum(w), "
        f"w = exp(-alpha_pgd * margin) on the final adversarial example.",
    ]
    headline = {"weighted_gain_points": gain, "uniform_drop_points": uni_drop, "shift_gain_points": shift_gain}
    for k, r in res.items():
        headline.update(
            {
                f"{k}_clean": r["clean"][0],
                f"{k}_robust_uniform": r["robust"][0.0][0],
                f"{k}_robust_alpha_{a_c:g}": r["robust"][a_c][0],
                f"{k}_shifted": r["shifted"][0],
            }
        )
    rows = [[k, _pm(r["clean"]), *[_pm(r["robust"][a]) for a in alphas], _pm(r["shifted"])] for k, r in res.items()]
    seed_rows = [
        [
            k,
            s,
            round(per[(k, s)]["clean"], 4),
            *[round(per[(k, s)]["robust"][a], 4) for a in alphas],
            round(per[(k, s)]["shifted"], 4),
        ]
        for s in seeds
        for k in trainers
    ]
    return Outcome(
        claims=claims,
        headline=headline,
        notes=notes,
        description=(
            f"PGD adversarial training vs learnable weighted minimax risk (alpha {t.alpha:g}) on "
            f"{m.data_name}; uniform and non-uniform (weighted) PGD attacks at eps {px(p.eval.eps)}."
        ),
        tables={
            "accuracy": {
                "title": f"Clean, uniform-robust, non-uniform-robust (weighted attack, alpha_pgd) "
                f"and shifted-distribution robust accuracy, mean ± std over {len(seeds)} "
                f"seed(s)",
                "columns": ["trainer", "clean", *[f"alpha_pgd {a:g}" for a in alphas], f"shifted to {shift_cls}"],
                "rows": rows,
            },
            "per_seed": {
                "title": "Per seed",
                "columns": ["trainer", "seed", "clean", *[f"alpha_pgd {a:g}" for a in alphas], "shifted"],
                "rows": seed_rows,
            },
        },
        details={
            "seeds": seeds,
            "results": {
                k: {
                    "clean": r["clean"][0],
                    "robust": {str(a): v[0] for a, v in r["robust"].items()},
                    "shifted": r["shifted"][0],
                    "std": {
                        "clean": r["clean"][1],
                        "shifted": r["shifted"][1],
                        "robust": {str(a): v[1] for a, v in r["robust"].items()},
                    },
                }
                for k, r in res.items()
            },
            "per_seed": {
                f"{k}/seed{s}": {
                    "clean": r["clean"],
                    "robust": {str(a): v for a, v in r["robust"].items()},
                    "shifted": r["shifted"],
                }
                for (k, s), r in per.items()
            },
            "shift": {"classes": shift_cls, "mass": p.eval.shift_mass, "gain_points": shift_gain},
            "claim_seed_spread": {
                "gain_points": per_seed_gain,
                "gain_interval95": gain_ci,
                "uniform_drop_points": per_seed_drop,
                "uniform_drop_interval95": drop_ci,
            },
            "data": {"name": m.data_name, "source": m.data_source, "n_train": m.n_train, "n_test": m.n_test},
        },
        passed=per[("weighted_at", seeds[0])]["robust"][0.0] >= p.accept_min_robust_acc,
    )


def _weights_png(path: Path, hist: list[dict], kind: str):
    fig, ax = plt.subplots(figsize=(6, 4))
    cmap = plt.get_cmap("viridis")
    for i, r in enumerate(hist):
        ax.hist(
            np.asarray(r["weights"]),
            bins=40,
            histtype="step",
            density=True,
            color=cmap(i / max(1, len(hist) - 1)),
            label=f"epoch {r['epoch']}",
        )
    ax.set_xlabel("importance weight exp(-alpha * margin)")
    ax.set_ylabel("density")
    ax.set_title(f"{kind}: weight distribution over training")
    ax.legend(fontsize=7)
    return save(fig, path)


def write_figures(out: Outcome, p: MinimaxParams, m: Measured, plot_dir: Path, rel: str = "plots/minimax") -> None:
    """Robust accuracy vs alpha_pgd (CSV for `dvc plots`, PNG), the weight distributions and their quantiles per
    epoch of the weighted trainers; sets `out.figures`."""
    res, alphas = aggregate(p, m), p.eval.alphas
    write_csv(
        plot_dir / "robust_vs_alpha.csv",
        ["alpha_pgd", *res, *[f"{k}_std" for k in res]],
        [[a, *[res[k]["robust"][a][0] for k in res], *[res[k]["robust"][a][1] for k in res]] for a in alphas],
    )
    fig, ax = plt.subplots(figsize=(6, 4))
    for k, r in res.items():
        ax.errorbar(
            alphas,
            [r["robust"][a][0] for a in alphas],
            yerr=[r["robust"][a][1] for a in alphas],
            marker="o",
            capsize=3,
            label=k,
        )
    ax.set_xlabel("alpha_pgd of the non-uniform attack (0 = uniform)")
    ax.set_ylabel("weighted robust accuracy")
    ax.set_title(f"{m.data_name}, eps {px(p.eval.eps)}, mean ± std over {len(m.seeds)} seed(s)")
    ax.legend()
    save(fig, plot_dir / "robust_vs_alpha.png")
    out.figures = [
        {
            "path": f"{rel}/robust_vs_alpha.png",
            "caption": "Weighted robust accuracy vs the attacker's alpha_pgd (mean ± std over seeds)",
        }
    ]
    wq = []
    for k, hist in m.histories.items():
        if k.startswith("weighted"):
            _weights_png(plot_dir / f"weights_{k}.png", hist, k)
            out.figures.append(
                {"path": f"{rel}/weights_{k}.png", "caption": f"{k}: distribution of importance weights per epoch"}
            )
            wq += [
                [
                    k,
                    r["epoch"],
                    *np.quantile(r["weights"], [0.1, 0.5, 0.9]).round(4).tolist(),
                    round(float(np.max(r["weights"])), 4),
                ]
                for r in hist
            ]
    write_csv(plot_dir / "weight_quantiles.csv", ["trainer", "epoch", "q10", "median", "q90", "max"], wq)
