"""tenfold: the science library (plain functions and torch modules; no prefect, mlflow or dvc imports).

core/        shared core: params validation, device, seeds, atomic files, checkpoints, claims, reports, plots
components/  shared components: data sources, models, training loop, perturbation engine, attacks, defenses
studies/     one package per study, named by its slug (params, science, outcome)
registry.py  the study registry: the only list of studies
"""

__version__ = "0.1.0"
