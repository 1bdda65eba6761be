"""Study `fairness` (arXiv:2102.06764): fairness constraints on deep nets hold on train data, not on test data."""
