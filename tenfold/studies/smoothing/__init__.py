"""Center smoothing (arXiv:2102.09701): `smooth.Smooth` and its certificates, output distances (`distances`) and the
base models of the three tasks. Nothing is imported here: the registry reads `params` for every stage, and `smooth`
pulls in scipy.stats (about 1.3 s of start-up that the other stages do not need)."""
