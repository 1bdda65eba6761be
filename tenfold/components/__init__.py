"""Shared components: data sources and loaders, models, the training loop, the perturbation engine, and the
attack and defense registries. They import `tenfold.core` only, never a study.
"""
