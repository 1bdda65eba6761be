"""Secure dataset release by poisoning (arXiv:2103.02683): poisons, online release service, evaluation."""
