"""Weighted minimax risk adversarial training (arXiv:2010.12989)."""
