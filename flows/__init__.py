"""One Prefect flow per study; `flows/all.py` runs them all, `flows/deploy.py` serves schedules."""

from tasks import _env  # noqa: F401  (must run before prefect is imported)
