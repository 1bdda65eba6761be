"""From measured victim accuracies, perceptual distances and crafting records to the secure_release study's
claims, headline, tables, notes and figures (no training here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tenfold.components.attacks.metrics import wilson
from tenfold.core.claims import claim
from tenfold.core.outcome import Outcome
from tenfold.core.plotting import write_csv
from tenfold.studies.secure_release import plots
from tenfold.studies.secure_release.params import SecureReleaseParams

#: the training sets whose first-arch victim records its clean test accuracy after every epoch
CURVE_SETS = ("clean", "alignment", "adv_targeted", "adv_untargeted", "unlearnable", "random_noise")
#: the releases crafted again at every budget of the eps sweep
SWEEP_METHODS = ("alignment", "adv_targeted", "random_noise")


@dataclass
class Measured:
    """What the secure_release flow measured. Accuracies are fractions; drops are reported in points."""

    data_name: str
    data_source: str
    n_train: int  # released training images
    n_test: int  # clean test images
    surrogate_acc: float
    acc: dict[tuple[str, str], float]  # (training set, victim arch) -> clean test accuracy; "clean" = no poison
    counter_acc: dict[tuple[str, str], float]  # (release, counter-move) -> clean test accuracy of the first arch
    perceptual: dict[str, dict[str, float]]  # release -> psnr, ssim, linf_255
    craft_seconds: dict[str, float]  # release -> CPU seconds of crafting (summed over its batch tasks)
    craft_info: dict[str, dict]  # method -> info (alignment objective; the unlearnable noise's rounds and stop rule)
    online_images_per_second: float | None = None
    faces: dict | None = None  # AT&T experiment: accuracies, sizes, subjects and perceptual distance
    release_service: str = ""  # where the saved release service is
    num_classes: int = 10
    curves: dict[tuple[str, str], list[float]] = field(default_factory=dict)  # (set, arch) -> accuracy per epoch
    victim_seconds: dict[tuple[str, str], float] = field(default_factory=dict)  # (set, arch) -> CPU seconds


def snapshot_name(k: int) -> str:
    """The training set made of the alignment iterates after `k` PGD steps."""
    return f"alignment@{k}steps"


def sweep_name(method: str, eps: float) -> str:
    """A release of the eps sweep."""
    return f"{method}@eps{eps:g}"


def plan(p: SecureReleaseParams) -> list[tuple[str, str, float, int]]:
    """(release name, method, eps /255, PGD steps) of every release crafted batch by batch: the methods at
    craft.eps (unlearnable noise has its own task), then the eps sweep's releases (diagnostic)."""
    c = p.craft
    base = c.baseline_steps or c.steps
    steps = {"alignment": c.steps, "adv_targeted": base, "adv_untargeted": base, "random_noise": 1}
    out = [(m, m, c.eps, steps[m]) for m in p.methods if m != "unlearnable"]
    sweep_steps = p.diagnostics.eps_sweep_steps
    for e in p.diagnostics.eps_sweep:
        if e == c.eps:
            continue
        for m in SWEEP_METHODS:
            if m in p.methods:
                out.append((sweep_name(m, e), m, e, sweep_steps or steps[m] if m != "random_noise" else 1))
    return out


def alignment_info(batch_infos: list[dict], sizes: list[int]) -> dict:
    """The alignment objective 1 - cos on the surrogate, before and after crafting, weighted over the batches."""
    w = np.asarray(sizes, float) / max(1, sum(sizes))
    return {k: float(np.dot(w, [b[k] for b in batch_infos])) for k in ("loss_clean", "loss_released")}


def counter_moves(p: SecureReleaseParams) -> list[str]:
    """The adversary's counter-moves evaluated (against the first victim arch)."""
    out = ["adversarial_training"] if p.counter.adversarial_training else []
    return out + (list(p.counter.augmentations) if p.counter.mixup_alpha else [])


def counter_sets(p: SecureReleaseParams) -> list[str]:
    """The training sets the counter-moves are tried on (a release only if it is crafted)."""
    return [s for s in p.counter.sets if s == "clean" or s in p.methods]


def releases(m: Measured) -> list[str]:
    """Released sets of the main comparison in order (every method at craft.eps, then the online release)."""
    return [s for s in m.perceptual if "@" not in s]


def chance(m: Measured) -> float:
    return 1.0 / m.num_classes


def trained_archs(p: SecureReleaseParams, m: Measured) -> list[str]:
    """Victim archs whose clean-trained copy reached victims.min_clean_acc (and beat chance, so that a share of
    its above-chance accuracy exists); the others failed to train."""
    return [
        a for a in p.victims.archs if m.acc[("clean", a)] >= p.victims.min_clean_acc and m.acc[("clean", a)] > chance(m)
    ]


def drop(m: Measured, s: str, a: str) -> float:
    """Points of clean test accuracy lost by victim `a` trained on `s` instead of the clean set."""
    return 100 * (m.acc[("clean", a)] - m.acc[(s, a)])


def share(m: Measured, s: str, a: str) -> float:
    """The share of victim `a`'s above-chance clean accuracy that training on `s` removes:
    (acc_clean - acc_s) / (acc_clean - 1/K)."""
    above = m.acc[("clean", a)] - chance(m)
    return (m.acc[("clean", a)] - m.acc[(s, a)]) / above if above > 0 else float("nan")


def _mean(v: list[float]) -> float | None:
    return float(np.mean(v)) if v else None


def _r(v: float | None, nd: int = 4) -> float | None:
    """A table cell: rounded, None for a missing or undefined value."""
    return None if v is None or not np.isfinite(v) else round(float(v), nd)


def build(p: SecureReleaseParams, m: Measured) -> Outcome:
    archs, rel = p.victims.archs, releases(m)
    ok = trained_archs(p, m)
    failed = [a for a in archs if a not in ok]
    mean_share = {s: _mean([share(m, s, a) for a in ok]) for s in rel}
    mean_drop = {s: _mean([drop(m, s, a) for a in ok]) for s in rel}
    valid = ", ".join(ok) if ok else "none"
    claims = [
        claim(
            "release_accuracy_drop",
            f"victims trained from scratch on the alignment release lose at least half of their "
            f"above-chance clean test accuracy: (acc_clean - acc_released) / (acc_clean - 1/K), mean over "
            f"the victims that trained ({valid}), eps {p.craft.eps:g}/255",
            "substantial degradation of validation accuracy (CIFAR-10, ImageNet); adversarial poisons "
            "of the same lab take a 93% CIFAR-10 victim to 7%",
            mean_share["alignment"],
            p.drop_target,
            ">=",
            note=(f"mean absolute drop {mean_drop['alignment']:.1f} points" if ok else "no victim trained")
            + (f"; failed training (excluded): {', '.join(failed)}" if failed else ""),
        )
    ]
    if p.online.enabled and "alignment_online" in rel:
        online_gap = (mean_drop["alignment"] - mean_drop["alignment_online"]) if ok else None
        claims.append(
            claim(
                "online_matches_batch",
                f"online release ({p.online.batch_size} items per call) protects within "
                f"{p.online_tolerance:g} points of batch release (mean drop of batch minus online)",
                "online release is as protective as batch release",
                online_gap,
                p.online_tolerance,
                "<=",
            )
        )
    counters, csets = counter_moves(p), counter_sets(p)
    headline = {
        "alignment_share_removed": mean_share["alignment"],
        "accuracy_drop": mean_drop["alignment"],
        "surrogate_acc": m.surrogate_acc,
        "victim_clean_acc": _mean([m.acc[("clean", a)] for a in ok]),
        "victim_alignment_acc": _mean([m.acc[("alignment", a)] for a in ok]),
        **{f"share_removed_{s}": mean_share[s] for s in rel if s != "alignment"},
        "alignment_psnr": m.perceptual["alignment"]["psnr"],
        "alignment_ssim": m.perceptual["alignment"]["ssim"],
        "victims_failed": len(failed),
    }
    for c in counters[:2]:
        if ("alignment", c) in m.counter_acc:
            headline[f"counter_{c}_alignment_acc"] = m.counter_acc[("alignment", c)]
    if m.faces:
        headline.update(faces_clean_acc=m.faces["clean_acc"], faces_released_acc=m.faces["released_acc"])
    return Outcome(
        claims=claims,
        headline=headline,
        description=(
            f"Alignment poisoning (reverse cross-entropy gradient alignment) of {m.n_train} {m.data_name} "
            f"images at l_inf {p.craft.eps:g}/255 on a {p.surrogate.arch} surrogate, against "
            f"adversarial and unlearnable baselines and random noise; victims {', '.join(archs)} trained "
            "from scratch."
        ),
        tables=_tables(p, m, ok, mean_share, mean_drop, counters, csets),
        notes=_notes(p, m, claims, ok, failed, mean_share, mean_drop),
        details={
            "surrogate_acc": m.surrogate_acc,
            "victim_acc": {f"{s}/{a}": v for (s, a), v in m.acc.items()},
            "victims_trained": ok,
            "victims_failed": failed,
            "accuracy_drop_points": {a: drop(m, "alignment", a) for a in archs},
            "share_removed": {a: share(m, "alignment", a) for a in archs},
            "mean_drop_by_release": mean_drop,
            "mean_share_by_release": mean_share,
            "counter_moves": {f"{s}/{c}": v for (s, c), v in m.counter_acc.items()},
            "perceptual": m.perceptual,
            "craft_seconds": m.craft_seconds,
            "craft_info": m.craft_info,
            "online_images_per_second": m.online_images_per_second,
            "faces": m.faces,
            "epoch_curves": {f"{s}/{a}": v for (s, a), v in m.curves.items()},
            "victim_cpu_seconds": {f"{s}/{a}": v for (s, a), v in m.victim_seconds.items()},
            "release_service": m.release_service,
        },
        passed=m.surrogate_acc >= p.accept_min_surrogate_acc,
    )


def victim_rows(p: SecureReleaseParams, m: Measured) -> list[list]:
    """[release, accuracy per victim arch] for clean and every release of the main comparison."""
    return [[s, *[round(m.acc[(s, a)], 4) for a in p.victims.archs]] for s in ["clean", *releases(m)]]


def step_rows(p: SecureReleaseParams, m: Measured) -> list[list]:
    """Drop vs crafting steps (first arch): [steps, accuracy, drop in points, share removed]."""
    a0 = p.victims.archs[0]
    pts = [
        (k, snapshot_name(k))
        for k in sorted(p.diagnostics.step_snapshots)
        if k < p.craft.steps and (snapshot_name(k), a0) in m.acc
    ] + [(p.craft.steps, "alignment")]
    return [[k, round(m.acc[(s, a0)], 4), round(drop(m, s, a0), 2), _r(share(m, s, a0))] for k, s in pts]


def eps_rows(p: SecureReleaseParams, m: Measured) -> list[list]:
    """Accuracy vs eps (first arch): [eps, accuracy after each of SWEEP_METHODS] (clean accuracy at eps 0)."""
    a0 = p.victims.archs[0]
    methods = [s for s in SWEEP_METHODS if s in p.methods]
    rows = [[0.0, *[round(m.acc[("clean", a0)], 4)] * len(methods)]]
    for e in sorted({*p.diagnostics.eps_sweep, p.craft.eps}):
        names = [s if e == p.craft.eps else sweep_name(s, e) for s in methods]
        if all((n, a0) in m.acc for n in names):
            rows.append([e, *[round(m.acc[(n, a0)], 4) for n in names]])
    return rows


def _at_epoch(curve: list, e: int) -> float | None:
    """The curve's accuracy after epoch `e` (None if the curve is shorter or was not evaluated there)."""
    v = curve[e - 1] if e <= len(curve) else None
    return None if v is None else round(v, 4)


def _interval(v: float, n: int) -> str:
    """An accuracy `v` measured on `n` test images with its Wilson 95% interval."""
    ci = wilson(v * n, n)
    return f"{v:.3f}" if ci is None else f"{v:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"


def _tables(p, m: Measured, ok, mean_share, mean_drop, counters, csets) -> dict:
    archs, a0 = p.victims.archs, p.victims.archs[0]
    dist, rel = m.perceptual, releases(m)
    tables = {
        "victims": {
            "title": f"Victim clean test accuracy by training set and architecture, with 95% Wilson "
            f"intervals over the {m.n_test} test images (a victim whose clean-trained copy is below "
            f"{p.victims.min_clean_acc:g} failed training and is excluded)",
            "columns": ["training set", *[a + ("" if a in ok else " (failed)") for a in archs]],
            "rows": [[s, *[_interval(m.acc[(s, a)], m.n_test) for a in archs]] for s in ["clean", *rel]],
        },
        "drops": {
            "title": f"Share of above-chance clean accuracy removed, (acc_clean - acc) / (acc_clean - "
            f"{chance(m):g}), and drop in points at eps {p.craft.eps:g}/255: the paper's alignment "
            "release (the claim) beside the baselines (means over the victims that trained)",
            "columns": [
                "release",
                "mean share",
                "mean drop",
                *[f"{a} share" for a in archs],
                *[f"{a} drop" for a in archs],
                "PSNR dB",
                "SSIM",
            ],
            "rows": [
                [
                    s,
                    _r(mean_share[s]),
                    _r(mean_drop[s], 2),
                    *[_r(share(m, s, a)) for a in archs],
                    *[_r(drop(m, s, a), 2) for a in archs],
                    _r(dist[s]["psnr"], 2),
                    _r(dist[s]["ssim"]),
                ]
                for s in rel
            ],
        },
        "distance": {
            "title": "Perceptual distance of released images and crafting CPU time",
            "columns": ["release", "PSNR dB", "SSIM", "l_inf /255", "craft CPU s"],
            "rows": [
                [
                    s,
                    round(d["psnr"], 2),
                    round(d["ssim"], 4),
                    round(d["linf_255"], 2),
                    round(m.craft_seconds.get(s, 0.0), 1),
                ]
                for s, d in dist.items()
            ],
        },
    }
    steps = step_rows(p, m)
    if len(steps) > 1:
        tables["steps"] = {
            "title": f"Alignment release vs PGD steps ({a0} victim; constant step tau*eps: the "
            "iterate after k steps is the k-step release)",
            "columns": ["PGD steps", f"{a0} accuracy", "drop (points)", "share removed"],
            "rows": steps,
        }
    eps = eps_rows(p, m)
    if len(eps) > 2:
        tables["eps"] = {
            "title": f"{a0} victim accuracy vs l_inf budget (/255): alignment beside the baselines",
            "columns": ["eps /255", *[s for s in SWEEP_METHODS if s in p.methods]],
            "rows": eps,
        }
    curves = {s: v for (s, a), v in m.curves.items() if a == a0}
    if curves:
        n = max(len(v) for v in curves.values())
        measured = {e for v in curves.values() for e, a in enumerate(v, 1) if a is not None}
        marks = sorted({e for e in (1, 2, 5, 10, 15, 20, 30, 40, n) if e in measured})
        tables["epochs"] = {
            "title": f"{a0} victim clean test accuracy after each epoch, by training set",
            "columns": ["training set", *[f"epoch {e}" for e in marks]],
            "rows": [[s, *[_at_epoch(v, e) for e in marks]] for s, v in curves.items()],
        }
    if counters:
        tables["counter"] = {
            "title": f"Counter-moves of the adversary ({a0} victim)",
            "columns": ["training set", *counters],
            "rows": [[s, *[round(m.counter_acc[(s, c)], 4) for c in counters]] for s in csets],
        }
    f = m.faces
    if f:
        tables["faces"] = {
            "title": f"AT&T face identification ({f['subjects']} subjects) trained on faces released "
            f"at {f.get('eps', p.faces.craft.eps):g}/255",
            "columns": ["surrogate acc", "victim clean-trained", "victim released-trained", "PSNR dB", "SSIM"],
            "rows": [
                [
                    round(f["surrogate_acc"], 4),
                    round(f["clean_acc"], 4),
                    round(f["released_acc"], 4),
                    round(f["psnr"], 2),
                    round(f["ssim"], 4),
                ]
            ],
        }
    return tables


def _notes(p, m: Measured, claims, ok, failed, mean_share, mean_drop) -> list[str]:
    a0 = p.victims.archs[0]
    notes = [
        f"{'Reproduced' if c.holds else 'Not reproduced'} at this scale: `{c.id}` measured "
        f"{c.measured if c.measured is None else round(c.measured, 3)} (target {c.comparison} {c.target})."
        for c in claims
    ]
    c = p.craft
    notes.append(
        f"Data: {m.data_name} ({m.data_source}), {m.n_train} released training images, {m.n_test} clean test "
        f"images. Surrogate {p.surrogate.arch} ({m.surrogate_acc:.3f} clean test accuracy); alignment poisons: "
        f"{c.steps} signed PGD steps of {c.tau:g}*eps ({c.schedule}), {c.restarts} restart(s), differentiable "
        f"translation{' + flip' if c.flip else ''} in the loss, one cosine per batch of {c.batch_size}; baselines "
        f"{c.baseline_steps or c.steps} steps. The paper's setting (ResNet-18 surrogate on all of CIFAR-10, 8 "
        "restarts, 40-epoch victims) is profiles/paper.yaml."
    )
    info = m.craft_info.get("alignment")
    if info:
        notes.append(
            f"The optimiser works on the surrogate: the alignment loss 1 - cos(grad CE(released), g_t) "
            f"falls from {info['loss_clean']:.3f} on the clean batches to {info['loss_released']:.3f} "
            f"on the released ones (cosine {1 - info['loss_released']:.2f})."
        )
    if failed:
        notes.append(
            f"Failed training (clean-trained accuracy below {p.victims.min_clean_acc:g}), excluded from the "
            f"claims: " + ", ".join(f"{a} {m.acc[('clean', a)]:.3f}" for a in failed) + "."
        )
    if ok:
        per = ", ".join(f"{a} {drop(m, 'alignment', a):.1f} points (share {share(m, 'alignment', a):.2f})" for a in ok)
        notes.append(
            f"Alignment release at {c.eps:g}/255: mean drop {mean_drop['alignment']:.1f} points, share "
            f"{mean_share['alignment']:.2f} ({per})."
        )
        base = [
            f"{s} {mean_drop[s]:.1f} points (share {mean_share[s]:.2f})"
            for s in releases(m)
            if s != "alignment" and mean_drop.get(s) is not None
        ]
        if base:
            notes.append("Same budget, other releases (mean over the victims that trained): " + "; ".join(base) + ".")
    if ok and "random_noise" in mean_drop:
        notes.append(
            f"Random +-eps noise alone drops the victims by {mean_drop['random_noise']:.1f} points on "
            f"average (per victim: "
            + ", ".join(f"{a} {drop(m, 'random_noise', a):.1f}" for a in ok)
            + "); a poison's effect beyond noise is its drop minus this control."
        )
    steps = step_rows(p, m)
    if len(steps) > 1:
        notes.append(
            f"Drop vs crafting steps ({a0}): " + ", ".join(f"{k} steps {d:.1f} points" for k, _, d, _ in steps) + "."
        )
    ue = m.craft_info.get("unlearnable")
    if ue:
        how = (
            f"its stop rule (surrogate error on the noisy data {ue['final_error']:.3f} < {p.unlearnable.stop_error})"
            if ue["stopped_by_error"]
            else f"the cap max_rounds={p.unlearnable.max_rounds} (error still {ue['final_error']:.3f})"
        )
        notes.append(f"Unlearnable noise ran {ue['rounds']} min-min rounds, ended by {how}.")
    if m.online_images_per_second:
        notes.append(
            f"Online release throughput in this run: {m.online_images_per_second:.1f} images/s of "
            f"{m.data_name} (shared CPU; benchmarks/bench_release.py measures it alone)."
        )
    return notes


def write_figures(
    out: Outcome,
    p: SecureReleaseParams,
    m: Measured,
    clean,
    released: dict,
    plot_dir: Path,
    rel: str = "plots/secure_release",
) -> None:
    """The victim-accuracy CSV (for `dvc plots`) and bar chart, the example images and the diagnostic curves;
    sets `out.figures`."""
    rows = victim_rows(p, m)
    write_csv(plot_dir / "victim_accuracy.csv", ["release", *p.victims.archs], rows)
    plots.victim_bars(
        plot_dir / "victim_accuracy.png",
        rows,
        p.victims.archs,
        f"victims trained on released {m.data_name} (eps {p.craft.eps:g}/255)",
    )
    plots.examples(plot_dir / "examples.png", clean, released)
    out.figures = [
        {
            "path": f"{rel}/victim_accuracy.png",
            "caption": "Clean test accuracy of victims trained from scratch on each release",
        },
        {"path": f"{rel}/examples.png", "caption": "Clean and released images"},
    ]
    a0 = p.victims.archs[0]
    curves = {s: v for (s, a), v in m.curves.items() if a == a0}
    steps, eps = step_rows(p, m), eps_rows(p, m)
    plots.diagnostics(  # always written (a DVC output), blank when every diagnostic is off
        plot_dir / "diagnostics.png",
        a0,
        steps if len(steps) > 1 else [],
        curves,
        eps if len(eps) > 2 else [],
        [s for s in SWEEP_METHODS if s in p.methods],
    )
    if curves or len(steps) > 1 or len(eps) > 2:
        out.figures.append(
            {
                "path": f"{rel}/diagnostics.png",
                "caption": f"Why the claim holds or not ({a0} victim): drop vs PGD steps of the "
                "alignment release, accuracy vs victim epochs per training set, accuracy "
                "vs eps beside the baselines",
            }
        )
