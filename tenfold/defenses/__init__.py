"""Defenses against poisoning and backdoors, one module per family, registered with their stage (see
`tenfold.attacks.registry`)."""
from tenfold.attacks.registry import DEFENSES, get_defense, register_defense  # noqa: F401

from . import augment, dp, filtering, strip  # noqa: F401  (registration)
from .none import build_none  # noqa: F401
