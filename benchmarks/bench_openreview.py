"""Scraper throughput (pages/s and notes/s) against the local fake OpenReview API. On demand only:

    python benchmarks/bench_openreview.py [--papers 5000] [--page-size 100] [--api 1]

Compares the full scraper (normalize + atomic page file + atomic cursor per page) with the bare openreview-py
`get_notes` loop over the same pages, so the client-side overhead is visible.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# tests/support by path: a `tests` package in site-packages would shadow the namespace package `tests`
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "support")]

import openreview  # noqa: E402
from fake_openreview import FakeOpenReview, make_venue  # noqa: E402

from tenfold.studies.openreview.params import ScrapeParams, VenueSpec  # noqa: E402
from tenfold.studies.openreview.scrape import configure_retries, scrape_venue  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--papers", type=int, default=5000)
    ap.add_argument("--page-size", type=int, default=100)
    ap.add_argument("--api", type=int, default=1, choices=[1, 2])
    a = ap.parse_args(argv)
    venue = "ICLR.cc/2020/Conference"
    notes = make_venue(venue, a.papers, 0, api=a.api)
    spec = VenueSpec(venue=venue, api=a.api, submission_invitation=f"{venue}/-/Blind_Submission")
    sp = ScrapeParams(page_size=a.page_size, max_retries=2, backoff_factor=0.01)
    with FakeOpenReview(notes) as srv:
        client = (
            openreview.Client(baseurl=srv.baseurl)
            if a.api == 1
            else openreview.api.OpenReviewClient(baseurl=srv.baseurl)
        )
        configure_retries(client, sp)
        t = time.perf_counter()
        after, pages = None, 0
        while True:
            page = client.get_notes(
                invitation=spec.submission_invitation,
                details="directReplies",
                limit=a.page_size,
                sort="id",
                after=after,
            )
            if not page:
                break
            after, pages = page[-1].id, pages + 1
        bare = time.perf_counter() - t
        with tempfile.TemporaryDirectory() as d:
            t = time.perf_counter()
            scrape_venue(client, spec, 2020, d, sp)
            full = time.perf_counter() - t
    print(f"{a.papers} notes, {pages} pages of {a.page_size} (API v{a.api})")
    print(f"bare openreview-py get_notes: {pages / bare:7.1f} pages/s  {a.papers / bare:8.0f} notes/s")
    print(
        f"tenfold scraper (resumable):  {pages / full:7.1f} pages/s  {a.papers / full:8.0f} notes/s "
        f"({full / bare:.2f}x the bare client time)"
    )


if __name__ == "__main__":
    main()
