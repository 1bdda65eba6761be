"""Study `maze` (arXiv:2102.11011): recurrent nets that solve larger mazes by thinking longer."""
