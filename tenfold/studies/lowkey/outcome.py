"""From measured identification rates, image quality, the trade-off sweep and the AT&T table to the lowkey
study's claims, headline, tables, notes and figures (no training or filtering here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tenfold.components.attacks.metrics import wilson  # the Wilson score interval, one copy
from tenfold.core.claims import claim
from tenfold.core.outcome import Outcome, claim_notes
from tenfold.core.plotting import write_csv
from tenfold.studies.lowkey import plots
from tenfold.studies.lowkey.evaluate import SWEEP_COLUMNS, Measured
from tenfold.studies.lowkey.params import LowKeyAttack, LowKeyParams

STEP_WORDS = {"sign": "signed", "l2": "L2-normalised"}  # attack.step as the report names it


def setting_label(cfg: LowKeyAttack, attack: list[str] | None = None) -> str:
    """A trade-off run's name: its step size and penalty weight, the options beyond the release it uses, and its
    attack ensemble when that is not the default one (`attack`)."""
    parts = [f"lr{cfg.lr:g}", f"c{cfg.c_sim:g}", cfg.step]
    if cfg.smooth_sigma:
        parts.append(f"s{cfg.smooth_sigma:g}")
    if cfg.eot_shift or cfg.eot_scale:
        parts.append(f"eot{cfg.eot_shift:g}/{cfg.eot_scale:g}")
    if attack:
        parts.append("by " + "+".join(attack))
    return " ".join(parts)


def alone_rows(rows: list[list], name: str, max_step: int) -> list | None:
    """The trade-off row of the run whose attack is `name` alone, at its largest step <= `max_step` (None when no
    such run)."""
    col = {c: i for i, c in enumerate(SWEEP_COLUMNS)}
    mine = [r for r in rows if r[col["attack"]] == name and r[col["n_iters"]] <= max_step]
    return max(mine, key=lambda r: r[col["n_iters"]]) if mine else None


def operating_points(rows: list[list], bounds: list[float]) -> dict[str, dict | None]:
    """For each face-SSIM bound, the sweep row with the lowest dlib rank-1 among rows at or above it (ties: the
    higher SSIM); None when no row reaches the bound."""
    fs, d1 = SWEEP_COLUMNS.index("face_ssim"), SWEEP_COLUMNS.index("dlib_rank1")
    out = {}
    for b in bounds:
        ok = [r for r in rows if r[fs] >= b]
        best = min(ok, key=lambda r: (r[d1], -r[fs])) if ok else None
        out[f"ssim>={b:g}"] = None if best is None else dict(zip(SWEEP_COLUMNS, best))
    return out


__all__ = ["Measured", "build", "operating_points", "setting_label", "write_figures"]


def _ci(rate: float, n: int) -> list[float] | None:
    ci = wilson(round(rate * n), n)
    return None if ci is None else [round(ci[0], 4), round(ci[1], 4)]


def build(p: LowKeyParams, m: Measured) -> Outcome:
    e, heldout, n = p.eval, p.models.heldout, m.n_probes
    first, subtle = m.filtered["first"], m.filtered["subtle"]
    fs1, fs2 = float(m.quality["first"]["face_ssim"].mean()), float(m.quality["subtle"]["face_ssim"].mean())
    d1, d2, h1 = first["dlib"]["ranks"][1], subtle["dlib"]["ranks"][1], first[heldout]["ranks"][1]
    claims = [
        claim(
            "dlib_rank1_filtered",
            f"dlib's recognizer (third party) identifies at most {e.target_dlib_rank1:g} "
            f"of LowKey-filtered probes at rank 1 (gallery with distractors) while the mean face-region SSIM "
            f"is at least {e.target_ssim:g} ({e.first_iters} steps)",
            "Rekognition and Azure below 1-3% rank-1 on FaceScrub",
            d1,
            e.target_dlib_rank1,
            "<=",
            holds=d1 <= e.target_dlib_rank1 and fs1 >= e.target_ssim,
            note=f"face SSIM {fs1:.3f}; Wilson 95% {_ci(d1, n)}",
        ),
        claim(
            "lowkey_ssim",
            f"mean face-region SSIM of the filtered probes to the originals at the first operating "
            f"point is at least {e.target_ssim:g}",
            "LowKey filters stay visually close (LPIPS-controlled)",
            fs1,
            e.target_ssim,
            ">=",
        ),
        claim(
            "dlib_rank1_subtle",
            f"at a second operating point ({e.subtle_iters} steps) with mean face-region SSIM "
            f">= {e.target_ssim_subtle:g}, dlib identifies at most {e.target_dlib_rank1_subtle:g} at rank 1",
            "a filter a user would accept on a profile photo",
            d2,
            e.target_dlib_rank1_subtle,
            "<=",
            holds=d2 <= e.target_dlib_rank1_subtle and fs2 >= e.target_ssim_subtle,
            note=f"face SSIM {fs2:.3f}; Wilson 95% {_ci(d2, n)}",
        ),
        claim(
            "surrogate_rank1_filtered",
            f"the held-out recognizer ({heldout}, never in the attack) identifies at "
            f"most {e.target_heldout_rank1:g} of filtered probes at rank 1 (first operating point)",
            "black-box FR models fooled",
            h1,
            e.target_heldout_rank1,
            "<=",
            note=f"Wilson 95% {_ci(h1, n)}",
        ),
    ]
    bounds = [e.target_ssim, e.target_ssim_subtle]
    points = operating_points(m.sweep_rows, bounds)
    headline = {
        "dlib_rank1_filtered": d1,
        "dlib_rank1_subtle": d2,
        "dlib_rank1_clean": m.clean["dlib"]["ranks"][1],
        "lowkey_ssim": fs1,
        "lowkey_ssim_subtle": fs2,
        "photo_ssim": float(m.quality["first"]["ssim"].mean()),
        "psnr_mean": float(np.mean(np.minimum(m.quality["first"]["psnr"], 100))),
        "heldout_rank1_clean": m.clean[heldout]["ranks"][1],
        "heldout_rank1_filtered": h1,
        "heldout_rank1_subtle": subtle[heldout]["ranks"][1],
        "dlib_detected_filtered": first["dlib"]["detected"],
        "seconds_cpu_per_probe": round(m.attack_cpu_seconds / max(1, n), 2),
    }
    if m.att:
        att = {r[0]: r for r in m.att["rows"]}
        headline["att_dlib_rank1_filtered"] = att["dlib"][3]
    tables = {
        "models": _model_table(p, m),
        "quality": _quality_table(m),
        "tradeoff": {
            "title": "Trade-off: each run read after n_iters steps (default run: every probe; the "
            "other runs: the sweep subset)",
            "columns": SWEEP_COLUMNS,
            "rows": m.sweep_rows,
        },
        "registry": {
            "title": "The face-model registry",
            "columns": ["name", "role", "input", "normalisation", "source"],
            "rows": [[r["name"], r["role"], r["input"], r["normalisation"], r["source"]] for r in m.registry],
        },
        "surrogates": _training_table(m),
        "init": _init_table(p, m),
    }
    if m.att:
        tables["att"] = {
            "title": f"AT&T faces ({m.att['subjects']} subjects, {m.att['probes']} probes, gallery one "
            "photo per subject): rank-1",
            "columns": [
                "model",
                "role",
                "clean",
                f"filtered ({e.first_iters} steps)",
                f"filtered ({e.subtle_iters} steps)",
            ],
            "rows": m.att["rows"],
        }
    return Outcome(
        claims=claims,
        headline=headline,
        tables=tables,
        notes=_notes(p, m, claims, points),
        description=(
            f"LowKey filters {n} CelebA probes of {m.counts['eval_identities']} identities (gallery "
            f"{m.counts['gallery']} photos incl. {m.counts['distractors']} distractor identities) with "
            f"the ensemble {' + '.join(p.models.attack)} (each x2 with Gaussian smoothing), "
            f"{STEP_WORDS[p.attack.step]} gradient steps of {p.attack.lr:g} through MTCNN detection and "
            "differentiable alignment; "
            f"identification by dlib (re-detecting), the held-out {heldout} and every surrogate."
        ),
        details={
            "first_iters": e.first_iters,  # the operating points, read by the web tool's "measured protection"
            "attack": p.attack.model_dump(),
            "counts": m.counts,
            "clean": _jsonable(m.clean),
            "filtered": _jsonable(m.filtered),
            "quality": {k: {q: float(np.mean(np.minimum(v, 100))) for q, v in d.items()} for k, d in m.quality.items()},
            "face_ssim_min": {k: float(d["face_ssim"].min()) for k, d in m.quality.items()},
            "mtcnn_found_filtered": m.mtcnn_found,
            "operating_points": points,
            "tradeoff": {"columns": SWEEP_COLUMNS, "rows": m.sweep_rows},
            "att": m.att,
            "registry": m.registry,
            "training": {k: {**v, "history": v.get("history", [])[-1:]} for k, v in m.training.items()},
            "attack_cpu_seconds": round(m.attack_cpu_seconds, 1),
        },
        passed=m.clean["dlib"]["ranks"][1] >= 0.9 and m.clean[heldout]["auc"] >= 0.95,
    )


def _jsonable(d):
    if isinstance(d, dict):
        return {str(k): _jsonable(v) for k, v in d.items()}
    return d


def _model_table(p: LowKeyParams, m: Measured) -> dict:
    ranks = p.eval.ranks
    cols = [
        "model",
        "role",
        "clean AUC",
        *[f"clean rank-{k}" for k in ranks],
        *[f"filtered rank-{k}" for k in ranks],
        *[f"subtle rank-{k}" for k in ranks],
    ]
    roles = {r["name"]: r["role"] for r in m.registry}
    rows = [
        [
            name,
            roles.get(name, ""),
            round(c["auc"], 4),
            *[round(c["ranks"][k], 4) for k in ranks],
            *[round(m.filtered["first"][name]["ranks"][k], 4) for k in ranks],
            *[round(m.filtered["subtle"][name]["ranks"][k], 4) for k in ranks],
        ]
        for name, c in m.clean.items()
    ]
    return {
        "title": f"Every recognizer: clean verification AUC, rank-k on clean probes and on filtered probes "
        f"({p.eval.first_iters} steps = first, {p.eval.subtle_iters} steps = subtle operating point)",
        "columns": cols,
        "rows": rows,
    }


def _quality_table(m: Measured) -> dict:
    rows = []
    for k, q in m.quality.items():
        rows.append(
            [
                k,
                round(float(q["face_ssim"].mean()), 4),
                round(float(q["face_ssim"].min()), 4),
                round(float(q["ssim"].mean()), 4),
                round(float(np.mean(np.minimum(q["psnr"], 100))), 2),
                round(m.mtcnn_found[k], 4),
            ]
        )
    return {
        "title": "Image quality of the filtered probes",
        "columns": [
            "operating point",
            "mean face SSIM",
            "min face SSIM",
            "mean photo SSIM",
            "mean PSNR (dB)",
            "MTCNN re-detects",
        ],
        "rows": rows,
    }


def _training_table(m: Measured) -> dict:
    rows = []
    for name, t in m.training.items():
        last = (t.get("history") or [{}])[-1]
        rows.append(
            [
                name,
                t.get("head"),
                t.get("init"),
                len(t.get("history") or []),
                t.get("train_photos"),
                t.get("train_identities"),
                round(last.get("loss", float("nan")), 3),
                round(last.get("train_acc", float("nan")), 3),
                t.get("cpu_seconds"),
            ]
        )
    return {
        "title": "Surrogates trained here (CelebA identities disjoint from the evaluated and distractor ones)",
        "columns": ["name", "head", "init", "epochs", "photos", "identities", "final loss", "final train acc", "CPU s"],
        "rows": rows,
    }


def _init_table(p: LowKeyParams, m: Measured) -> dict:
    """Fine-tuned from the MS1M weights vs trained from scratch: each surrogate's clean accuracy here and, when the
    sweep ran it alone as the attack, what its filter does to dlib and the held-out recognizer (transfer)."""
    col, step = {c: i for i, c in enumerate(SWEEP_COLUMNS)}, p.eval.first_iters
    rows = []
    for name in ["ms1m", *m.training]:
        c = m.clean.get(name)
        if c is None:
            continue
        t = m.training.get(name, {})
        alone = alone_rows(m.sweep_rows, name, step)
        rows.append(
            [
                name,
                "MS1M (pretrained)" if name == "ms1m" else t.get("init"),
                t.get("head", "arcface"),
                len(t.get("history") or []) or None,
                t.get("cpu_seconds"),
                round(c["auc"], 4),
                round(c["ranks"][1], 4),
                *(
                    [alone[col[k]] for k in ("n_iters", "probes", "face_ssim", "dlib_rank1", "heldout_rank1")]
                    if alone
                    else [None] * 5
                ),
            ]
        )
    return {
        "title": "Surrogates fine-tuned from MS1M vs trained from scratch: clean accuracy, and each one alone as the "
        f"attack (the sweep's single-model runs, read at <= {step} steps; the held-out model is {p.models.heldout})",
        "columns": [
            "surrogate",
            "init",
            "head",
            "epochs",
            "train CPU s",
            "clean AUC",
            "clean rank-1",
            "alone: steps",
            "probes",
            "face SSIM",
            "dlib rank-1",
            "held-out rank-1",
        ],
        "rows": rows,
    }


def _init_note(table: dict) -> str | None:
    """One sentence comparing a fine-tuned and a from-scratch surrogate (same head when there is one): their clean
    accuracy, and what each one's filter alone does when the sweep ran it."""
    scratch = [r for r in table["rows"] if r[1] == "scratch"]
    tuned = [r for r in table["rows"] if r[1] == "ms1m"]
    if not scratch or not tuned:
        return None
    sc = scratch[0]
    ft = next((r for r in tuned if r[2] == sc[2]), tuned[0])

    def alone(r):
        if r[10] is None:
            return "was not run alone as the attack"
        return (
            f"alone takes dlib to {r[10]:.3f} and the held-out model to {r[11]:.3f} after {r[7]} steps on {r[8]} "
            f"probes (face SSIM {r[9]:.3f})"
        )

    return (
        f"Fine-tuned vs from scratch: {ft[0]} ({ft[3]} epoch(s) from the MS1M weights; clean AUC {ft[5]:.3f}, "
        f"rank-1 {ft[6]:.3f}) {alone(ft)}; {sc[0]} ({sc[3]} epoch(s) from scratch on the same photos; clean AUC "
        f"{sc[5]:.3f}, rank-1 {sc[6]:.3f}) {alone(sc)}."
    )


def _notes(p: LowKeyParams, m: Measured, claims, points) -> list[str]:
    c = m.counts
    notes = claim_notes(claims, "Reached", "Not reached") + [
        f"Protocol: {c['eval_identities']} CelebA identities, {p.data.gallery_per_identity} clean gallery photo(s) "
        f"each plus {c['distractors']} distractor identities ({c['gallery']} gallery entries), {m.n_probes} probes "
        f"({p.data.probes_per_identity} per identity) filtered on the full 250x250 photo. The recognizers re-detect "
        "every filtered photo with MTCNN (fallback: the centred square); dlib re-detects with its own HOG detector.",
        "Face-region SSIM: scikit-image SSIM (7x7 window, RGB) inside the clean photo's MTCNN face box; photo SSIM "
        "is over the whole 250x250 photo, whose background the filter leaves untouched (so it flatters the filter).",
        "Perceptual penalty: 1 - SSIM instead of LPIPS (AlexNet LPIPS weights are not available offline).",
        f"Surrogates: MobileFaceNet (the MS1M architecture) with ArcFace / CosFace heads, trained on "
        f"{c['train_photos']} photos of {c['train_identities']} CelebA identities disjoint from the evaluated and "
        "distractor identities; the paper's are IR-152 / ResNet-152 trained on MS-Celeb-1M.",
    ]
    init = _init_note(_init_table(p, m))
    if init:
        notes.append(init)
    for key, row in points.items():
        notes.append(
            f"Trade-off, {key.replace('ssim', 'face SSIM ')}: "
            + (
                "no setting reaches it."
                if row is None
                else f"lowest dlib rank-1 {row['dlib_rank1']:.3f} at {row['setting']}, {row['n_iters']} steps "
                f"(face SSIM {row['face_ssim']:.3f}, held-out rank-1 {row['heldout_rank1']:.3f}, "
                f"{row['probes']} probes)."
            )
        )
    return notes


def write_figures(out: Outcome, p: LowKeyParams, m: Measured, plot_dir: Path, rel: str = "plots/lowkey") -> None:
    """CSVs for `dvc plots` (identification, per-probe quality, trade-off) and the PNGs; sets `out.figures`."""
    t = out.tables["models"]
    write_csv(plot_dir / "identification.csv", t["columns"], t["rows"])
    q = m.quality["first"]
    write_csv(
        plot_dir / "quality.csv",
        ["probe", "face_ssim", "ssim", "psnr"],
        [
            [i, round(float(a), 4), round(float(b), 4), round(float(min(c, 100)), 3)]
            for i, (a, b, c) in enumerate(zip(q["face_ssim"], q["ssim"], q["psnr"]))
        ],
    )
    names, r1 = [r[0] for r in t["rows"]], 2 + 1
    nr = len(p.eval.ranks)
    plots.rank_bars(
        plot_dir / "rank1.png",
        names,
        [r[r1] for r in t["rows"]],
        [r[r1 + nr] for r in t["rows"]],
        [r[r1 + 2 * nr] for r in t["rows"]],
        "rank-1: clean vs LowKey probes",
    )
    out.figures = [{"path": f"{rel}/rank1.png", "caption": "Rank-1 of every recognizer, clean vs filtered probes"}]
    write_csv(plot_dir / "tradeoff.csv", SWEEP_COLUMNS, m.sweep_rows)
    plots.tradeoff(
        plot_dir / "tradeoff.png",
        m.sweep_rows,
        SWEEP_COLUMNS,
        [(p.eval.target_ssim, p.eval.target_dlib_rank1), (p.eval.target_ssim_subtle, p.eval.target_dlib_rank1_subtle)],
        {"first": p.eval.first_iters, "subtle": p.eval.subtle_iters},
    )
    out.figures.append(
        {
            "path": f"{rel}/tradeoff.png",
            "caption": "dlib rank-1 vs mean face-region SSIM over steps, step size and penalty weight",
        }
    )
    if m.examples is not None:
        plots.examples(plot_dir / "examples.png", *m.examples, (p.eval.first_iters, p.eval.subtle_iters))
        out.figures.append(
            {
                "path": f"{rel}/examples.png",
                "caption": "Original, both operating points, and the first point's difference x5",
            }
        )
