"""Dataset-security benchmark (arXiv:2012.10544) and the augmentation study (arXiv:2011.09527)."""
