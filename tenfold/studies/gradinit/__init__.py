"""GradInit (arXiv:2102.08098): learn one scale per parameter tensor before training.

`algorithm.gradinit` is the method; `models` holds the no-BN VGG, the no-BN deep ResNet and the Post-LN
Transformer; `seqtask` generates the copy/reverse/sort task; `train` runs the ordinary training after init.
"""
