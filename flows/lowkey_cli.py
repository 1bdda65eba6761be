"""`tenfold lowkey serve`: the LowKey web tool (hooked into flows/cli.py by `add_lowkey_command`)."""

from __future__ import annotations

import argparse
from pathlib import Path


def cmd_lowkey_serve(args) -> int:
    from tenfold.components.data.sources import shared_root
    from tenfold.core.runtime import configure_threads
    from tenfold.registry import load_params
    from tenfold.studies.lowkey.web import load_protector, serve

    sections = load_params(args.params, ["lowkey"])
    p, common = sections["lowkey"], sections["common"]
    configure_threads(args.threads if args.threads else common.threads)
    surrogates = Path(args.surrogates) if args.surrogates else Path(args.root) / "models" / "lowkey" / "surrogates.pt"
    # the weights are checked (SHA-256, strict keys) here: a bad file stops the tool before it serves anything
    protector = load_protector(
        shared_root(common.shared_data, args.root),
        surrogates,
        p.models.attack,
        p.attack,
        p.web,
        p.align.min_face_size,
        Path(args.root) / "results" / "lowkey.json",
    )
    serve(protector, args.host, args.port or p.web.port)
    return 0


def add_lowkey_command(subparsers: argparse._SubParsersAction) -> None:
    """Add `lowkey serve [--host H] [--port P] [--surrogates FILE] [--threads N]` to the tenfold parser."""
    lk = subparsers.add_parser("lowkey", help="LowKey web tool (upload a photo, download the protected one)")
    lsub = lk.add_subparsers(dest="lowkey_cmd", required=True)
    s = lsub.add_parser(
        "serve",
        help="serve the web page (needs models/lowkey/surrogates.pt from "
        "`tenfold run lowkey_surrogates` and the pretrained MobileFaceNet)",
    )
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=None, help="default: lowkey.web.port in params.yaml")
    s.add_argument("--surrogates", default=None, help="default: <root>/models/lowkey/surrogates.pt")
    s.add_argument("--threads", type=int, default=None, help="torch threads (default: common.threads)")
    s.set_defaults(fn=cmd_lowkey_serve)
