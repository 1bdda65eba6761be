"""The experiment grid of the study and the reductions of its results (plain functions, no Prefect).

Runs (`plan_runs`): on the main face task, every face net (CNN widths, ResNet widths) x method, for the claim's
notion (and every notion on the headline net, `hub`: `face_model.headline` at its largest width); the other face
tasks, the training-set-size axis and the what-helps variants (weight decay, augmentation) on the headline net; the
secondary (medical, tabular) datasets with the MLP. Every configuration runs every seed.

Reductions: `config_summary` gives the final (or any) epoch's train/test gap and accuracy of one configuration,
averaged over methods within a seed, then over seeds with a 95% t-interval over the seeds, next to the test gap's
permutation noise floor; `status` turns it into the claim's verdict for that configuration.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from tenfold.studies.fairness.params import FairnessParams, FairnessTrain

CONSTRAINED = ("penalty", "lagrangian", "adversarial")
FACE_PREFIX = "utk_"
VARIANTS = {"base": "as trained", "wd": "weight decay", "aug": "augmentation"}


def face_name(task: str) -> str:
    return f"{FACE_PREFIX}{task}"


def is_face(dataset: str) -> bool:
    return dataset.startswith(FACE_PREFIX)


@dataclass(frozen=True)
class RunSpec:
    dataset: str
    method: str
    notion: str  # "none" for erm
    width: int
    seed: int
    arch: str = "mlp"  # mlp | cnn | resnet
    n_train: int | None = None  # training faces (None: the dataset's own training set)
    variant: str = "base"  # base | wd (weight decay) | aug (augmentation)

    @property
    def name(self) -> str:
        out = f"{self.dataset}_{self.arch}{self.width}_{self.method}_{self.notion}_s{self.seed}"
        return (
            out + (f"_n{self.n_train}" if self.n_train else "") + ("" if self.variant == "base" else f"_{self.variant}")
        )

    @property
    def data_key(self) -> tuple[str, int | None]:
        return (self.dataset, self.n_train)

    def as_dict(self) -> dict:
        return asdict(self)


ARCH_NAMES = {"cnn": "CNN", "resnet": "ResNet", "mlp": "MLP"}


def hub(p: FairnessParams) -> tuple[str, int]:
    """(arch, width) of the headline net: `face_model.headline` at its largest width."""
    fm = p.face_model
    return fm.headline, max(fm.widths if fm.headline == "cnn" else fm.resnet_widths)


def plan_runs(p: FairnessParams) -> list[RunSpec]:
    """Every run of the study (see the module docstring)."""
    f, fm, ft, claim = p.faces, p.face_model, p.face_train, p.eval.claim_notion
    runs: list[RunSpec] = []

    def add(ds, arch, w, methods, notions, seeds, n=None, variant="base"):
        for m in methods:
            for nt in ["none"] if m == "erm" else notions:
                runs.extend(RunSpec(ds, m, nt, w, k, arch, n, variant) for k in range(seeds))

    main, (arch0, widest) = face_name(f.main), hub(p)
    for arch in fm.archs:
        for w in fm.widths if arch == "cnn" else fm.resnet_widths:
            every = (arch, w) == (arch0, widest) or fm.notion_widths == "all"
            add(main, arch, w, ft.methods, ft.notions if every else [claim], ft.seeds, f.n_train)
    for task in f.tasks:
        if task != f.main:
            add(
                face_name(task),
                arch0,
                widest,
                ft.methods,
                [n for n in f.other_notions if n in ft.notions] or [claim],
                ft.seeds,
                f.n_train,
            )
    for n in p.curves.sizes:
        if n != f.n_train:
            add(main, arch0, widest, ft.methods, [claim], ft.seeds, n)
    for variant in ["wd"] + (["aug"] if p.helps.augment else []):
        add(main, arch0, widest, [m for m in p.helps.methods if m in ft.methods], [claim], ft.seeds, f.n_train, variant)
    for ds in p.data.datasets:
        arch = p.model.image_arch if ds in ("digits", "celeba") else "mlp"
        for w in p.model.widths:
            add(ds, arch, w, p.train.methods, p.train.notions, p.train.seeds)
    return runs


@dataclass(frozen=True)
class RunSetup:
    cfg: FairnessTrain
    depth: int
    arch: str
    channel_ratio: float
    augment: bool


def run_setup(p: FairnessParams, spec: RunSpec) -> RunSetup:
    """How to build and train the net of `spec`: face nets use face_model/face_train (channels = width), the
    secondary datasets model/train; the what-helps variants change weight decay or add augmentation."""
    if is_face(spec.dataset):
        cfg = p.face_train
        if spec.variant == "wd":
            cfg = cfg.model_copy(update={"weight_decay": p.helps.weight_decay})
        return RunSetup(cfg, p.face_model.depth, spec.arch, 1.0, spec.variant == "aug")
    return RunSetup(p.train, p.model.depth, spec.arch, p.model.cnn_channel_ratio, False)


def main_spec(p: FairnessParams) -> RunSpec:
    """The run whose weights are kept and registered: the main face task, the Lagrangian method (else the first
    constrained one), the claim's notion, the headline net, seed 0."""
    methods = p.face_train.methods
    method = "lagrangian" if "lagrangian" in methods else next(m for m in methods if m != "erm")
    arch, width = hub(p)
    return RunSpec(face_name(p.faces.main), method, p.eval.claim_notion, width, 0, arch, p.faces.n_train)


def results_frame(results: list[tuple[RunSpec, list[dict]]]) -> pd.DataFrame:
    """One row per (run, evaluated epoch)."""
    rows = [{**spec.as_dict(), **rec} for spec, hist in results for rec in hist]
    df = pd.DataFrame(rows)
    if "n_train" in df:
        df["n_train"] = df["n_train"].astype("Int64")
    return df


def final(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of the last evaluated epoch of every run."""
    if df.empty:
        return df
    last = (
        df.groupby(
            ["dataset", "method", "notion", "width", "seed", "arch", "n_train", "variant"], dropna=False
        ).epoch.transform("max")
        if "arch" in df
        else df.epoch.max()
    )
    return df[df.epoch == last]


def gap_resolution(s: np.ndarray, y: np.ndarray, notion: str) -> float:
    """Smallest non-zero gap measurable on a sample: 1 / (size of the smallest conditioning cell)."""
    if notion == "dp":
        sizes = [(s == g).sum() for g in (0, 1)]
    else:
        labels = (1,) if notion == "eopp" else (0, 1)
        sizes = [((s == g) & (y == c)).sum() for g in (0, 1) for c in labels]
    return 1.0 / max(1, min(sizes))


def select(
    df: pd.DataFrame,
    dataset: str,
    notion: str,
    methods=CONSTRAINED,
    arch: str | None = None,
    width: int | None = None,
    n_train: int | None = None,
    variant: str = "base",
) -> pd.DataFrame:
    """Rows of one configuration (every epoch): erm runs match any notion."""
    if df.empty:
        return df
    sel = df[
        (df.dataset == dataset)
        & df.notion.isin([notion, "none"])
        & df.method.isin(list(methods))
        & (df.variant == variant)
    ]
    if arch is not None:
        sel = sel[sel.arch == arch]
    if width is not None:
        sel = sel[sel.width == width]
    if n_train is not None:
        sel = sel[sel.n_train == n_train]
    return sel


def seed_interval(values, level: float = 0.95) -> tuple[float, float | None, float | None]:
    """(mean, low, high) of per-seed values: a t-interval over the seeds (None with a single seed)."""
    v = np.asarray([x for x in values if x is not None and not np.isnan(x)], float)
    if not len(v):
        return float("nan"), None, None
    if len(v) < 2:
        return float(v.mean()), None, None
    from scipy import stats

    half = float(stats.t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))
    return float(v.mean()), float(v.mean() - half), float(v.mean() + half)


def summarize(rows: pd.DataFrame, notion: str, epsilon: float, resolution: float, overfit_ratio: float = 2.0) -> dict:
    """Train/test gap and accuracy of `rows` (one row per run: an epoch already chosen), averaged over methods
    within a seed, then over seeds (with the t-interval), the test noise floor (mean, quantile), the ratio
    test / max(train, resolution) and the claim's three conditions and verdict (`status`)."""
    if rows.empty:
        return {
            "runs": 0,
            "train_gap": None,
            "test_gap": None,
            "ratio": None,
            "meets_constraint": False,
            "overfits": False,
            "above_floor": False,
            "holds": False,
            "status": "no runs",
        }
    out: dict = {"runs": int(len(rows)), "seeds": int(rows.seed.nunique())}
    cols = {
        "train_gap": f"train_gap_{notion}",
        "test_gap": f"test_gap_{notion}",
        "train_acc": "train_acc",
        "test_acc": "test_acc",
        "test_floor": f"test_floor_{notion}",
        "test_floorq": f"test_floorq_{notion}",
    }
    for key, col in cols.items():
        if col not in rows:
            out[key] = None
            continue
        per_seed = rows.groupby("seed")[col].mean()
        mean, lo, hi = seed_interval(per_seed.values)
        out[key] = None if np.isnan(mean) else mean
        if key in ("train_gap", "test_gap", "test_acc"):
            out[f"{key}_lo"], out[f"{key}_hi"] = lo, hi
    tr, te, fq = out["train_gap"], out["test_gap"], out.get("test_floorq")
    # the claim's three conditions, exactly: train gap <= epsilon, test gap >= ratio x train gap, test gap above
    # the floor's quantile. `ratio` is the reported number: test / train, with a zero train gap counted at the
    # train set's resolution (so it stays finite; the condition itself compares the gaps directly).
    out["ratio"] = te / (tr if tr > 0 else resolution)
    out["meets_constraint"] = bool(tr <= epsilon)
    out["overfits"] = bool(te >= overfit_ratio * tr)
    out["above_floor"] = bool(fq is not None and te > fq)
    out["holds"] = bool(out["meets_constraint"] and out["overfits"] and out["above_floor"])
    out["status"] = status(out)
    tg, eg = rows[cols["train_gap"]], rows[cols["test_gap"]]
    ok = rows[(tg <= epsilon) & (eg >= overfit_ratio * tg)]
    if cols["test_floorq"] in rows:
        ok = ok[ok[cols["test_gap"]] > ok[cols["test_floorq"]]]
    out["runs_holding"] = int(len(ok))
    return out


def status(s: dict) -> str:
    """The claim's verdict for one configuration: `holds` only when all three conditions hold. A test gap that
    does not exceed its noise floor's quantile is `inconclusive` (the test set cannot separate it from sampling
    noise), whatever the other conditions say; it never holds."""
    if not s.get("runs"):
        return "no runs"
    if not s["above_floor"]:
        extra = "" if s["meets_constraint"] else "; constraint not met on train either"
        return f"inconclusive: test gap within the noise floor{extra}"
    if not s["meets_constraint"]:
        return "constraint not met on train"
    if not s["overfits"]:
        return "test gap above noise but below the ratio x train gap"
    return "holds"


def early_stopped(sel: pd.DataFrame, notion: str, tolerance: float) -> pd.DataFrame:
    """Per run, the evaluated epoch a held-out fairness criterion picks: the smallest held-out `notion` gap among
    the epochs whose held-out accuracy is within `tolerance` of the run's best held-out accuracy."""
    col = f"val_gap_{notion}"
    if sel.empty or col not in sel:
        return sel.iloc[:0]
    picked = []
    for _, run in sel.groupby(
        ["dataset", "method", "notion", "width", "seed", "arch", "n_train", "variant"], dropna=False
    ):
        ok = run[run.val_acc >= run.val_acc.max() - tolerance]
        picked.append(ok.sort_values([col, "epoch"]).iloc[0])
    return pd.DataFrame(picked)


def summary_table(df: pd.DataFrame, by: list[str], erm_notion: str) -> pd.DataFrame:
    """Final-epoch means over seeds: accuracy, the gap of each run's own notion (`erm_notion` for erm) and its
    test noise floor's quantile."""
    f = final(df).copy()
    if f.empty:
        return pd.DataFrame(columns=[*by, "train_acc", "test_acc", "train_gap", "test_gap", "test_floorq"])
    own = f.notion.where(f.notion != "none", erm_notion)
    for k in ("train_gap", "test_gap", "test_floorq"):
        f[k] = [r.get(f"{k}_{n}", np.nan) for (_, r), n in zip(f.iterrows(), own)]
    cols = ["train_acc", "test_acc", "train_gap", "test_gap", "test_floorq"]
    return f.groupby(by, sort=False, dropna=False)[cols].mean().reset_index()


def data_keys(specs: list[RunSpec]) -> list[tuple[str, int | None]]:
    """The distinct (dataset, training size) the runs need, in plan order."""
    return list(dict.fromkeys(s.data_key for s in specs))


def baseline_plan(p: FairnessParams) -> list[tuple[str, str]]:
    """(dataset, notion) of every fairlearn reduction: every face notion on the main task, the other tasks' and
    the secondary datasets' notions elsewhere."""
    if not p.baseline.enabled:
        return []
    out = [(face_name(p.faces.main), nt) for nt in p.face_train.notions]
    out += [
        (face_name(t), nt)
        for t in p.faces.tasks
        if t != p.faces.main
        for nt in ([n for n in p.faces.other_notions if n in p.face_train.notions] or [p.eval.claim_notion])
    ]
    out += [(ds, nt) for ds in p.data.datasets for nt in p.train.notions]
    return out


def load_dataset(p: FairnessParams, dataset: str, n_train: int | None, data_root, seed: int):
    """The FairData of one (dataset, training size): a UTKFace task from <data_root>/utkface64 (stage
    build_utkface), or a secondary dataset (`data.load`)."""
    from pathlib import Path

    from tenfold.studies.fairness import data as fair_data
    from tenfold.studies.fairness import faces

    if is_face(dataset):
        f = p.faces
        return faces.load_task(
            Path(data_root) / "utkface64",
            dataset[len(FACE_PREFIX) :],
            seed,
            f.size,
            n_train or f.n_train,
            f.n_val,
            f.n_test,
            f.age_threshold,
            f.race_s0,
            f.race_s1,
        )
    d = p.data
    return fair_data.load(
        dataset,
        data_root,
        seed,
        d.test_fraction,
        d.max_train,
        d.max_test,
        d.digits_source,
        {"target": d.celeba_target, "group": d.celeba_group, "size": d.celeba_size},
    )


def part_of(p: FairnessParams, spec: RunSpec) -> str:
    """Which part of the study a run belongs to (for the per-part CPU times)."""
    if not is_face(spec.dataset):
        return "secondary datasets: MLP"
    if spec.variant != "base":
        return f"what helps: {VARIANTS[spec.variant]}"
    if spec.n_train != p.faces.n_train:
        return "training-size axis"
    if spec.dataset != face_name(p.faces.main):
        return "other face tasks"
    return f"main face task: {spec.arch} widths"


def cpu_by_part(
    p: FairnessParams, specs: list[RunSpec], cpu: list[float | None], baselines: dict[tuple[str, str], float | None]
) -> dict[str, float | None]:
    """CPU seconds per part of the study (None where a part resumed from checkpoints)."""
    out: dict[str, float | None] = {}
    for spec, c in zip(specs, cpu):
        k = part_of(p, spec)
        out[k] = None if c is None or (k in out and out[k] is None) else out.get(k, 0.0) + c
    out["fairlearn baselines"] = sum(baselines.values()) if baselines and None not in baselines.values() else None
    return out
