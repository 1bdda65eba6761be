"""Benchmark (on demand): the web tool protects one 112x92 face (decode, MTCNN, 50 LowKey steps, PNG).

    python benchmarks/bench_lowkey.py [--ensemble models/lowkey/ensemble.pt] [--threads 2]

Uses the ensemble trained by `tenfold run lowkey` when present, else freshly initialised models of the same
architectures (the cost does not depend on the weights). Target (issue 7): under 10 s on 2 cores.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    import torch
    from PIL import Image

    from tenfold.components.data.faces import load_att
    from tenfold.registry import load_params
    from tenfold.studies.lowkey.models import FaceNet
    from tenfold.studies.lowkey.train import load_ensemble
    from tenfold.studies.lowkey.web import Protector

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--ensemble", default="models/lowkey/ensemble.pt")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    sections = load_params(args.params, ["lowkey"])
    p = sections["lowkey"]
    if Path(args.ensemble).exists():
        models, crop = load_ensemble(args.ensemble)
    else:
        crop = p.align.crop_size
        models = [FaceNet(s.backbone, crop, p.train.embedding_dim, p.train.width).eval() for s in p.ensemble]
    shared = Path(sections["common"].shared_data)
    face = load_att([shared / "faces", shared]).rgb()[0]
    buf = io.BytesIO()
    Image.fromarray(face).save(buf, format="PNG")
    prot = Protector(models, crop, p.attack, p.web, p.align.min_face_size)
    times = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        img, theta = prot.decode(buf.getvalue())
        prot.protect(img, theta)
        times.append(time.perf_counter() - t)
    print(
        f"protect one {face.shape[0]}x{face.shape[1]} face, {p.attack.n_iters} steps, {len(models)} models "
        f"x2 (blur), {args.threads} threads: best {min(times):.2f} s, median {sorted(times)[len(times) // 2]:.2f} s "
        "(target < 10 s)"
    )


if __name__ == "__main__":
    main()
