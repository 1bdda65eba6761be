"""Center smoothing (arXiv:2102.09701): `Smooth`, output distances and the base models of the three tasks."""

from tenfold.studies.smoothing.distances import get_distance, pairwise
from tenfold.studies.smoothing.smooth import Certificate, Smooth

__all__ = ["Certificate", "Smooth", "get_distance", "pairwise"]
