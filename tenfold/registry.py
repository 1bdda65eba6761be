"""The study registry: the only list of studies.

Each entry maps a slug to its paper (arXiv id, title), its params model (the `params.yaml` section of the same
name), its DVC stages in run order (each stage -> the Prefect flow that runs it, as "module:attribute"; the library
never imports flows), the other params sections it reads, and its schedule. The CLI, `flows/all.py`,
`flows/deploy.py`, the params loader and the report index all read this table; a test checks it against
`dvc.yaml`, `params.yaml`, both profiles and `docs/studies/`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from tenfold.core.config import Common, ParamsError, deep_merge, read_yaml
from tenfold.core.config import validate_section as _validate
from tenfold.studies.augmentation.params import AugmentationParams
from tenfold.studies.depth.params import DepthParams
from tenfold.studies.fairness.params import FairnessParams
from tenfold.studies.gradinit.params import GradInitParams
from tenfold.studies.lowkey.params import LowKeyParams
from tenfold.studies.maze.params import MazeParams
from tenfold.studies.minimax.params import MinimaxParams
from tenfold.studies.openreview.params import OpenReviewParams
from tenfold.studies.secure_release.params import SecureReleaseParams
from tenfold.studies.security.params import SecurityParams
from tenfold.studies.smoothing.params import SmoothingParams

NIGHTLY = "0 2 * * *"
YEARLY = "0 6 1 2 *"  # 1 February: after ICLR's January decisions


@dataclass(frozen=True)
class Study:
    slug: str
    arxiv: str
    title: str
    params: type[BaseModel]
    stages: dict[str, str]  # DVC stage -> "flows.<module>:<flow>", in run order; the study's own stage is `slug`
    uses: tuple[str, ...] = ()  # other params sections the study reads (validated with its own)
    schedule: str = NIGHTLY

    @property
    def doc(self) -> str:
        return f"docs/studies/{self.slug}.md"


STUDIES: dict[str, Study] = {
    s.slug: s
    for s in [
        Study(
            "maze",
            "2102.11011",
            "The Uncanny Similarity of Recurrence and Depth: mazes",
            MazeParams,
            {"build_mazes": "flows.maze:build_mazes_flow", "maze": "flows.maze:maze_flow"},
        ),
        Study(
            "depth",
            "2102.11011",
            "The Uncanny Similarity of Recurrence and Depth: image classification",
            DepthParams,
            {"depth": "flows.depth:depth_flow"},
        ),
        Study(
            "smoothing",
            "2102.09701",
            "Center Smoothing: certified robustness for vector-valued functions",
            SmoothingParams,
            {"smoothing": "flows.smoothing:smoothing_flow"},
        ),
        Study(
            "gradinit",
            "2102.08098",
            "GradInit: Learning to Initialize Neural Networks for Stable and Efficient Training",
            GradInitParams,
            {"gradinit": "flows.gradinit:gradinit_flow"},
        ),
        Study(
            "secure_release",
            "2103.02683",
            "Preventing unauthorized use of proprietary data: poisoning for secure dataset release",
            SecureReleaseParams,
            {"secure_release": "flows.secure_release:secure_release_flow"},
        ),
        Study(
            "minimax",
            "2010.12989",
            "Are adversarial examples created equal? A learnable weighted minimax risk for robustness",
            MinimaxParams,
            {"minimax": "flows.minimax:minimax_flow"},
        ),
        Study(
            "fairness",
            "2102.06764",
            "Technical Challenges for Training Fair Neural Networks",
            FairnessParams,
            {"build_utkface": "flows.fairness:build_utkface_flow", "fairness": "flows.fairness:fairness_flow"},
        ),
        Study(
            "lowkey",
            "2101.07922",
            "LowKey: leveraging adversarial attacks to protect social media users from facial recognition",
            LowKeyParams,
            {
                "lowkey_faces": "flows.lowkey_faces:lowkey_faces_flow",
                "lowkey_surrogates": "flows.lowkey_surrogates:lowkey_surrogates_flow",
                "lowkey": "flows.lowkey:lowkey_flow",
            },
        ),
        Study(
            "security",
            "2012.10544",
            "Dataset Security for Machine Learning: poisoning, backdoors and defenses (benchmark)",
            SecurityParams,
            {"craft_poisons": "flows.security:craft_poisons_flow", "security": "flows.security:security_flow"},
        ),
        Study(
            "augmentation",
            "2011.09527",
            "Strong Data Augmentation Sanitizes Poisoning and Backdoor Attacks Without an Accuracy Tradeoff",
            AugmentationParams,
            {"augmentation": "flows.augmentation:augmentation_flow"},
            uses=("security",),
        ),
        Study(
            "openreview",
            "2011.12919",
            "An Open Review of OpenReview: A Critical Analysis of the Machine Learning Conference Review Process",
            OpenReviewParams,
            {
                "scrape_openreview": "flows.openreview:scrape_openreview_flow",
                "openreview": "flows.openreview:openreview_flow",
            },
            schedule=YEARLY,
        ),
    ]
}


# Data builds shared by several studies: DVC stage -> flow; they run before the studies that read them.
DATA_STAGES: dict[str, str] = {"build_cifar10": "flows.data:build_cifar10_flow"}


class UnknownStudy(KeyError):
    def __str__(self) -> str:
        return self.args[0]


def get(slug: str) -> Study:
    """The registry entry of `slug`; an unknown slug lists the known ones."""
    if slug not in STUDIES:
        raise UnknownStudy(f"unknown study {slug!r} (known: {', '.join(STUDIES)})")
    return STUDIES[slug]


def stages() -> dict[str, Study]:
    """Every DVC stage of every study, in run order -> the study that owns it (data builds excluded)."""
    return {stage: s for s in STUDIES.values() for stage in s.stages}


def flow_entry(stage: str) -> str:
    """ "module:attribute" of the Prefect flow that runs DVC stage `stage` (a study stage or a data build)."""
    if stage in DATA_STAGES:
        return DATA_STAGES[stage]
    owners = stages()
    if stage not in owners:
        raise UnknownStudy(f"unknown stage {stage!r} (known: {', '.join([*DATA_STAGES, *owners])})")
    return owners[stage].stages[stage]


def study_of_stage(stage: str) -> Study:
    owners = stages()
    if stage not in owners:
        raise UnknownStudy(f"unknown stage {stage!r} (known: {', '.join([*DATA_STAGES, *owners])})")
    return owners[stage]


def models() -> dict[str, type[BaseModel]]:
    """params section -> its pydantic model (`common` first)."""
    return {"common": Common, **{s.slug: s.params for s in STUDIES.values()}}


def validate_section(section: str, raw: Any, source: str = "params.yaml") -> BaseModel:
    """Validate one params section (`common` or a study slug) into its typed model."""
    return _validate(section, raw, models(), source)


def load_params(
    path: str | Path = "params.yaml", sections: list[str] | None = None, overrides: dict | None = None
) -> dict[str, BaseModel]:
    """Validate the whole params file into typed models (every section, so a typo anywhere is caught before any
    compute). `sections` limits which are returned (with `common` and the sections they use); a missing study
    section takes its model's defaults."""
    raw = deep_merge(read_yaml(path), overrides or {})
    out = {name: validate_section(name, value, str(path)) for name, value in raw.items()}
    out.setdefault("common", Common())
    if not sections:
        return out
    wanted = ["common"]
    for name in sections:
        wanted += [name, *get(name).uses]
    for name in wanted:
        if name not in out:
            out[name] = validate_section(name, {}, str(path))
    return {name: out[name] for name in dict.fromkeys(wanted)}


def apply_profile(params_path: str | Path, profile_path: str | Path) -> dict:
    """Deep-merge a profile (e.g. profiles/paper.yaml) into params.yaml, validate, and return the merged dict."""
    merged = deep_merge(read_yaml(params_path), read_yaml(profile_path))
    for name, value in merged.items():
        validate_section(name, value, f"{params_path} + {profile_path}")
    return merged


__all__ = [
    "STUDIES",
    "Study",
    "UnknownStudy",
    "ParamsError",
    "get",
    "stages",
    "study_of_stage",
    "flow_entry",
    "DATA_STAGES",
    "models",
    "validate_section",
    "load_params",
    "apply_profile",
]
