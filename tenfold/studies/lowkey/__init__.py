"""LowKey (arXiv:2101.07922): adversarial filters against the whole face-recognition pipeline.

Modules: `pipeline` (MTCNN detection, 5-point alignment as a differentiable warp, gallery search), `models`
(small face backbones with ArcFace/CosFace heads), `train` (surrogate training), `attack` (the LowKey
objective), `dlibrec` (dlib's ResNet recognizer, the third-party black box), `web` (upload -> protected download).
"""
