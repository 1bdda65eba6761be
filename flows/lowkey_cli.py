"""`tenfold lowkey serve`: the LowKey web tool (hooked into flows/cli.py by `add_lowkey_command`)."""

from __future__ import annotations

import argparse
from pathlib import Path


def cmd_lowkey_serve(args) -> int:
    from tenfold.core.runtime import configure_threads
    from tenfold.registry import load_params
    from tenfold.studies.lowkey.web import serve

    sections = load_params(args.params, ["lowkey"])
    p = sections["lowkey"]
    # one filter at a time per request thread: torch's intra-op threads beyond common.threads only fight
    # (one 112x92 face: 3.3 s with 1 thread, 30+ s with 2 on a loaded 2-core machine)
    configure_threads(sections["common"].threads)
    ensemble = Path(args.ensemble) if args.ensemble else Path(args.root) / "models" / "lowkey" / "ensemble.pt"
    serve(args.host, args.port or p.web.port, ensemble, p.attack, p.web, p.align.min_face_size)
    return 0


def add_lowkey_command(subparsers: argparse._SubParsersAction) -> None:
    """Add `lowkey serve [--host H] [--port P] [--ensemble FILE]` to the tenfold parser."""
    lk = subparsers.add_parser("lowkey", help="LowKey web tool (upload a photo, download the protected one)")
    lsub = lk.add_subparsers(dest="lowkey_cmd", required=True)
    s = lsub.add_parser("serve", help="serve the web page (needs models/lowkey/ensemble.pt from `tenfold run lowkey`)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=None, help="default: lowkey.web.port in params.yaml")
    s.add_argument("--ensemble", default=None, help="default: <root>/models/lowkey/ensemble.pt")
    s.set_defaults(fn=cmd_lowkey_serve)
