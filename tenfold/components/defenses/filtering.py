"""Data-filtering defenses on the penultimate features of a victim trained on the (poisoned) data; the victim is
then retrained on what is kept. Both report the removed indices, hence precision/recall of removed poisons.

* Spectral signatures (Tran et al., arXiv:1811.00636): per class, centre the features, score each point by its
  squared projection on the top singular vector, remove the `overestimate x budget` highest scores of the class.
* Activation clustering (Chen et al., arXiv:1811.03728): per class, reduce the features to `dims` dimensions (PCA
  here; ICA in the paper), 2-means, and remove the smaller cluster when its share is below `max_share`.
"""

from __future__ import annotations

import numpy as np

from tenfold.components.defenses.registry import register_defense


class SpectralSignatures:
    def __init__(self, overestimate: float):
        self.overestimate = overestimate

    def select(self, feats: np.ndarray, y: np.ndarray, n_poison: int) -> np.ndarray:
        removed = []
        k = int(np.ceil(self.overestimate * n_poison))
        for c in np.unique(y):
            idx = np.flatnonzero(y == c)
            r = feats[idx] - feats[idx].mean(0)
            v = np.linalg.svd(r, full_matrices=False)[2][0]
            score = (r @ v) ** 2
            removed.append(idx[np.argsort(-score, kind="stable")[: min(k, len(idx) // 2)]])
        return np.sort(np.concatenate(removed))


class ActivationClustering:
    def __init__(self, dims: int, max_share: float, seed: int):
        self.dims, self.max_share, self.seed = dims, max_share, seed

    def select(self, feats: np.ndarray, y: np.ndarray, n_poison: int) -> np.ndarray:
        from sklearn.cluster import KMeans
        from sklearn.decomposition import PCA

        removed = []
        for c in np.unique(y):
            idx = np.flatnonzero(y == c)
            if len(idx) < 4:
                continue
            z = PCA(min(self.dims, len(idx) - 1, feats.shape[1]), random_state=self.seed).fit_transform(feats[idx])
            lab = KMeans(2, n_init=10, random_state=self.seed).fit_predict(z)
            small = int(np.argmin(np.bincount(lab, minlength=2)))
            if (lab == small).mean() < self.max_share:
                removed.append(idx[lab == small])
        return np.sort(np.concatenate(removed)) if removed else np.zeros(0, dtype=np.int64)


def precision_recall(removed: np.ndarray, poison_idx: np.ndarray) -> tuple[float, float]:
    """Precision and recall of the removed set against the true poison indices (precision 0 if nothing removed)."""
    hit = np.intersect1d(removed, poison_idx).size
    return (hit / len(removed) if len(removed) else 0.0), (hit / len(poison_idx) if len(poison_idx) else 0.0)


@register_defense(
    "spectral_signatures",
    stage="data filtering",
    kind="filter",
    needs_clean_data=False,
    reports="removed training indices (precision/recall of poisons)",
    paper="arXiv:1811.00636",
)
def build_spectral(cfg, num_classes: int) -> SpectralSignatures:
    return SpectralSignatures(cfg.overestimate)


@register_defense(
    "activation_clustering",
    stage="data filtering",
    kind="filter",
    needs_clean_data=False,
    reports="removed training indices (precision/recall of poisons)",
    paper="arXiv:1811.03728",
)
def build_activation_clustering(cfg, num_classes: int) -> ActivationClustering:
    return ActivationClustering(cfg.dims, cfg.max_share, cfg.seed)
