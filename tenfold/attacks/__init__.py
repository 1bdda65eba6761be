"""Poisoning and backdoor attacks, one module per family, registered with their taxonomy (see `registry`)."""
from . import backdoors, feature_collision, gradient_matching, label_flip  # noqa: F401  (registration)
from .registry import ATTACKS, get_attack, register_attack  # noqa: F401
