"""Study `augmentation` (arXiv:2011.09527): strong data augmentation against poisoning and backdoors, vs DP-SGD."""
