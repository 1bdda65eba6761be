"""Recurrence vs depth on image classification (arXiv:2102.11011): recurrent nets and their feed-forward twins
at matched effective depth (`models`), trained and compared (`train`)."""
