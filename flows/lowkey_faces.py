"""Stage `lowkey_faces` of study `lowkey` (arXiv:2101.07922): MTCNN landmarks and boxes of every CelebA and AT&T
photo, detected once and cached as data/lowkey/faces.npz (read by stages `lowkey_surrogates` and `lowkey`)."""

from __future__ import annotations

import numpy as np
from prefect import flow
from prefect.logging import get_run_logger

from flows.common import prepare
from tasks.lowkey_faces import detect, detect_files
from tenfold.core.runtime import atomic_savez
from tenfold.studies.lowkey.data import FACES_FILE, load_att_photos, load_celeba


@flow(name="lowkey_faces")
def lowkey_faces_flow(params_path: str = "params.yaml", root: str = ".") -> dict:
    """MTCNN landmarks and boxes of every CelebA and AT&T photo (the most confident face), cached."""
    ctx = prepare("lowkey", params_path, root)
    p = ctx.params
    celeba, mfs = load_celeba(ctx.shared_data, p.data.identities_max), p.align.min_face_size
    idx = np.arange(len(celeba))
    parts = [detect_files.submit(celeba, idx[k::2], mfs) for k in range(2)]
    att_rgb, *_ = load_att_photos(ctx.shared_data, p.att.subjects)
    att_pts, att_boxes, att_found = detect.submit(att_rgb, mfs).result()
    res = [f.result() for f in parts]
    arrays = {}
    for k, key in enumerate(("celeba_points", "celeba_boxes", "celeba_probs")):
        full = np.empty((len(celeba), *res[0][k].shape[1:]), np.float32)
        full[0::2], full[1::2] = res[0][k], res[1][k]
        arrays[key] = full
    att_points = np.stack([np.full((5, 2), np.nan, np.float32) if q is None else q for q in att_pts])
    path = atomic_savez(
        ctx.data_root / "lowkey" / FACES_FILE,
        celeba_paths=np.array(celeba.paths),
        **arrays,
        att_points=att_points.astype(np.float32),
        att_boxes=att_boxes,
        att_probs=att_found.astype(np.float32),
    )
    summary = {
        "celeba": len(celeba),
        "celeba_found": int((arrays["celeba_probs"] > 0).sum()),
        "att": len(att_rgb),
        "att_found": int(att_found.sum()),
        "path": str(path),
    }
    get_run_logger().info("lowkey faces: %s", summary)
    return summary
