"""`tenfold release IN_DIR OUT_DIR`: protect a folder of images with the saved release service.

Outputs are written atomically under OUT_DIR (mirroring IN_DIR, PNG, plus a labels.csv manifest); originals
are never modified and existing outputs are kept. `--watch SECONDS` keeps protecting new files for that long
(the same loop as the Prefect flow `release_folder_flow`, without a Prefect run).
"""

from __future__ import annotations

import argparse
import time


def cmd_release(args) -> int:
    from tenfold.studies.secure_release.service import ReleaseError, ReleaseService, protect_folder

    try:
        svc = ReleaseService.load(args.service)
        deadline = time.time() + args.watch
        while True:
            r = protect_folder(svc, args.in_dir, args.out_dir, args.batch_size)
            if r["protected"] or not args.watch:
                ips = r["images_per_second"]
                print(
                    f"protected {r['protected']} images, kept {r['skipped']} existing outputs"
                    + (f", {ips:.1f} images/s" if ips else "")
                    + f" -> {args.out_dir}"
                )
            if time.time() >= deadline:
                return 0
            time.sleep(args.poll)
    except ReleaseError as e:
        raise SystemExit(f"tenfold release: error: {e}") from None


def add_release_command(subparsers) -> argparse.ArgumentParser:
    """Register `release` on the `tenfold` CLI's subparsers."""
    r = subparsers.add_parser(
        "release",
        help="protect a folder of images for release (secure_release study)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    r.add_argument("in_dir", help="folder of originals: <label>/<name>.png or files listed in labels.csv")
    r.add_argument("out_dir", help="output folder (outside in_dir); never overwrites existing outputs")
    r.add_argument(
        "--service",
        default="models/secure_release/release_service.pt",
        help="release service saved by the secure_release study",
    )
    r.add_argument(
        "--batch-size",
        type=int,
        default=32,
        help="new files are coalesced into service calls of up to this many items (32: ~70 images/s "
        "on one core, 1: ~15)",
    )
    r.add_argument("--watch", type=float, default=0.0, help="keep watching in_dir for new files for SECONDS")
    r.add_argument("--poll", type=float, default=2.0, help="seconds between folder scans when watching")
    r.set_defaults(fn=cmd_release)
    return r
