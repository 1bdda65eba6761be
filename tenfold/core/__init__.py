"""Shared core: params validation, device and threads, seeds, atomic files, checkpoints, claims, reports, plots.

Nothing here knows a study; every other room of the library may import from here.
"""
