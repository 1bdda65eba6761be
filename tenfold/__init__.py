"""tenfold: the science library (plain functions and torch modules; no prefect, mlflow or dvc imports)."""

__version__ = "0.1.0"

ARXIV = {
    "maze": "2102.11011",
    "depth": "2102.11011",
    "smoothing": "2102.09701",
    "gradinit": "2102.08098",
    "secure_release": "2103.02683",
    "fairness": "2102.06764",
    "lowkey": "2101.07922",
    "security": "2012.10544",
    "openreview": "2011.12919",
    "augmentation": "2011.09527",
    "minimax": "2010.12989",
}
STUDIES = tuple(ARXIV)
