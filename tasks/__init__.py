"""Prefect task wrappers around the tenfold library, grouped by kind of work."""

from tasks import _env  # noqa: F401
