"""The perturbation engine shared by the secure-release and weighted-minimax studies (PGD, augmentations,
small classifiers and a pluggable training loop)."""

from tenfold.components.perturb.pgd import PGD, TranslateFlip, accuracy, attack, ce_loss, project, robust_accuracy

__all__ = ["PGD", "TranslateFlip", "accuracy", "attack", "ce_loss", "project", "robust_accuracy"]
