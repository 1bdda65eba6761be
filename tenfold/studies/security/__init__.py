"""Study `security` (arXiv:2012.10544): the dataset-security survey as a registry and an attack x defense benchmark
(its crafted poisons are reused by the `augmentation` study)."""
