"""Benchmark (on demand): the web tool protects one 250x250 CelebA photo (decode, MTCNN, the filter with the
attack ensemble, PNG), as `tenfold lowkey serve` does.

    python benchmarks/bench_lowkey.py [--surrogates models/lowkey/surrogates.pt] [--threads 2] [--repeat 3]

Uses the surrogates trained by stage `lowkey_surrogates` when present, else freshly initialised MobileFaceNets
of the same architecture in their place (the cost does not depend on the weights). Target (issue 14): under 10 s
on 2 cores. Prints wall and CPU seconds (user + sys of this process) per photo.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    import torch

    from tenfold.components.data.sources import locate, shared_root
    from tenfold.components.models.facemodels import PRETRAINED, build, load_pretrained, surrogate_spec
    from tenfold.registry import load_params
    from tenfold.studies.lowkey.recognizers import load_surrogates
    from tenfold.studies.lowkey.web import Protector

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--surrogates", default="models/lowkey/surrogates.pt")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    sections = load_params(args.params, ["lowkey"])
    p, shared = sections["lowkey"], shared_root(sections["common"].shared_data)
    trained = [n for n in p.models.attack if n not in PRETRAINED]
    if Path(args.surrogates).exists():
        sur, origin = load_surrogates(args.surrogates, trained), "trained"
    else:
        sur, origin = {n: build(n, surrogate_spec()).eval() for n in trained}, "random weights (not trained yet)"
    models = [load_pretrained(n, shared) if n in PRETRAINED else sur[n] for n in p.models.attack]
    photo = sorted((locate("celeba_crops", shared) / "images").glob("*/*.jpg"))[0]
    data = photo.read_bytes()
    prot = Protector(models, p.attack, p.web, p.align.min_face_size)
    walls, cpus = [], []
    for _ in range(args.repeat):
        t, c = time.perf_counter(), time.process_time()
        img, points, _ = prot.decode(data)
        prot.protect(img, points)
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    print(
        f"protect one {img.shape[1]}x{img.shape[0]} photo ({len(points)} face), {p.attack.n_iters} steps, "
        f"ensemble {'+'.join(p.models.attack)} ({origin}) x2 (blur), {args.threads} threads: wall best "
        f"{min(walls):.2f} s, median {sorted(walls)[len(walls) // 2]:.2f} s; CPU median "
        f"{sorted(cpus)[len(cpus) // 2]:.2f} s (target < 10 s wall)"
    )


if __name__ == "__main__":
    main()
