"""Scraper core: an openreview-py client object -> the normalized tables, one page at a time, resumable.

`scrape_venue(client, spec, year, work_dir, ...)` walks each submission stream of a venue (the submission
invitation, then e.g. withdrawn / desk-rejected invitations) with `client.get_notes(..., sort='id',
after=<last id>, details='directReplies')`, the same cursor scheme as `client.get_all_notes`. After every page it
writes that page's normalized rows (`pages/<stream>_<page>.json`) and then the cursor (`cursor.json`), both
atomically. A scrape killed at any point resumes from the cursor: a page whose rows were written but whose
cursor was not is fetched again and overwrites the same file, so no note is lost or duplicated.

HTTP faults: the client's session gets a bounded urllib3 `Retry` (429, 5xx, connection errors and read
timeouts; exponential backoff with jitter; `Retry-After` honoured) from `ScrapeParams`. When retries are exhausted
the scrape fails with a `ScrapeError` naming the venue, the invitation and the last saved cursor.

Credentials: the client reads OPENREVIEW_USERNAME / OPENREVIEW_PASSWORD from the environment itself; this module
never reads, logs or writes them.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from tenfold.core.runtime import atomic_write_json
from tenfold.studies.openreview.params import ScrapeParams, VenueSpec
from tenfold.studies.openreview.people import institution_domain
from tenfold.studies.openreview.schema import TABLES, TableError, category, frame

log = logging.getLogger("tenfold.studies.openreview.scrape")
SOURCE_LIVE = "live OpenReview API (openreview-py)"
CURSOR_VERSION = 1


class ScrapeError(RuntimeError):
    """Raised when the API keeps failing; names the venue, the invitation and the last saved cursor."""


class _TimeoutAdapter(HTTPAdapter):
    """HTTPAdapter with a default per-request timeout (openreview-py sets none), so a stalled page is retried."""

    def __init__(self, timeout: float, **kw):
        self._timeout = timeout
        super().__init__(**kw)

    def send(self, request, **kw):
        if kw.get("timeout") is None:
            kw["timeout"] = self._timeout
        return super().send(request, **kw)


def configure_retries(client, sp: ScrapeParams) -> None:
    """Replace the client's retry policy (8 tries, backoff up to 120 s) by the bounded one from params."""
    retry = Retry(
        total=sp.max_retries,
        connect=sp.max_retries,
        read=sp.max_retries,
        status=sp.max_retries,
        backoff_factor=sp.backoff_factor,
        backoff_max=sp.backoff_max,
        backoff_jitter=sp.backoff_jitter,
        status_forcelist=[429, 500, 502, 503, 504],
        allowed_methods=None,
        raise_on_status=False,
        respect_retry_after_header=True,
    )
    adapter = _TimeoutAdapter(sp.timeout, max_retries=retry, pool_maxsize=8)
    client.session.mount("https://", adapter)
    client.session.mount("http://", adapter)


def make_client(spec: VenueSpec, sp: ScrapeParams):
    """The openreview-py client for the venue's API version (v1 `Client`, v2 `api.OpenReviewClient`).

    Login happens inside the client when OPENREVIEW_USERNAME/OPENREVIEW_PASSWORD are set; anonymous otherwise.
    """
    import openreview

    if spec.api == 1:
        client = openreview.Client(baseurl=sp.baseurl)
    else:
        client = openreview.api.OpenReviewClient(baseurl=sp.baseurl_v2)
    configure_retries(client, sp)
    return client


# ---------------------------------------------------------------- normalizing one note
def _value(v: Any) -> Any:
    """API v2 wraps every content field as {'value': ...}; v1 does not."""
    return v.get("value") if isinstance(v, dict) and "value" in v else v


def _invitations(reply: dict) -> list[str]:
    inv = reply.get("invitations") or [reply.get("invitation") or ""]
    return [i for i in inv if i]


def _ends(reply: dict, suffix: str) -> bool:
    s = "/" + suffix.lower()
    return any(i.lower().endswith(s) for i in _invitations(reply))


_LEADING_NUMBER = re.compile(r"^\s*(-?\d+(?:\.\d+)?)")


def parse_score(raw: Any, field: str, where: str) -> float:
    """`"6: Marginally above acceptance threshold"`, `6`, `{'value': 6}` -> 6.0; anything else is an error."""
    v = _value(raw)
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    m = _LEADING_NUMBER.match(v) if isinstance(v, str) else None
    if not m:
        raise TableError(f"{where}: review field {field!r} = {raw!r} has no leading number")
    return float(m.group(1))


def normalize_note(
    note, spec: VenueSpec, year: int, status_map: dict[str, str], forced_status: str | None
) -> dict[str, list[dict]]:
    """One submission note (with details.directReplies) -> rows of every table."""
    nid = note.id
    where = f"{spec.venue} note {nid}"
    content = {k: _value(v) for k, v in (note.content or {}).items()}
    replies = (note.details or {}).get("directReplies") or []
    if forced_status is None and not isinstance(replies, list):
        raise TableError(f"{where}: details.directReplies missing; scrape with details='directReplies'")
    rows: dict[str, list[dict]] = {t: [] for t in TABLES}
    kw = content.get("keywords") or []
    rows["submissions"].append(
        {
            "year": year,
            "venue": spec.venue,
            "note_id": nid,
            "title": content.get("title") or "",
            "source": SOURCE_LIVE,
            "keywords": ";".join(kw) if isinstance(kw, list) else str(kw),
        }
    )
    names, ids = content.get("authors") or [], content.get("authorids") or []
    for pos, name in enumerate(names):
        aid = ids[pos] if pos < len(ids) else None
        rows["authors"].append(
            {
                "year": year,
                "note_id": nid,
                "position": pos,
                "name": name,
                "author_id": aid,
                "domain": institution_domain(aid),
            }
        )
    scale = set(spec.rating_scale)
    reviews = sorted(
        (r for r in replies if _ends(r, spec.review_suffix)), key=lambda r: (r.get("cdate") or 0, r.get("id"))
    )
    for i, r in enumerate(reviews):
        rc = r.get("content") or {}
        rwhere = f"{where} review {r.get('id')}"
        if spec.rating_field not in rc:
            raise TableError(
                f"{rwhere}: no field {spec.rating_field!r} (fields: {sorted(rc)}); "
                f"set openreview.venues.{year}.rating_field"
            )
        rating = parse_score(rc[spec.rating_field], spec.rating_field, rwhere)
        if rating not in scale:
            raise TableError(f"{rwhere}: rating {rating} outside the {year} scale {sorted(scale)}")
        conf = None
        if spec.confidence_field and spec.confidence_field in rc:
            conf = parse_score(rc[spec.confidence_field], spec.confidence_field, rwhere)
        rows["reviews"].append(
            {
                "year": year,
                "note_id": nid,
                "review_id": r.get("id") or f"{nid}#{i}",
                "review_index": i,
                "rating": rating,
                "confidence": conf,
            }
        )
    decision = forced_status
    if decision is None:
        found = [r for r in replies if any(_ends(r, s) for s in spec.decision_suffixes)]
        for r in found:
            val = _value((r.get("content") or {}).get(spec.decision_field))
            if val:
                decision = str(val)
        decision = decision or "Active"
    rows["decisions"].append(
        {"year": year, "note_id": nid, "decision": decision, "category": category(decision, status_map, where)}
    )
    return rows


# ---------------------------------------------------------------- cursor and pages
def _slug(venue: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", venue).strip("_")


def venue_dir(work_dir: str | Path, spec: VenueSpec) -> Path:
    return Path(work_dir) / _slug(spec.venue)


def load_cursor(vdir: Path, spec: VenueSpec) -> dict:
    path = vdir / "cursor.json"
    if not path.exists():
        return {"version": CURSOR_VERSION, "venue": spec.venue, "streams": {}}
    cur = json.loads(path.read_text())
    if cur.get("venue") != spec.venue or cur.get("version") != CURSOR_VERSION:
        raise ScrapeError(
            f"{path}: cursor belongs to {cur.get('venue')!r} (v{cur.get('version')}), not "
            f"{spec.venue!r}; delete the directory to rescrape"
        )
    return cur


def _streams(spec: VenueSpec) -> list[tuple[str, str | None]]:
    return [(spec.submission_invitation, None), *((inv, st) for st, inv in spec.extra_invitations.items())]


def scrape_venue(
    client,
    spec: VenueSpec,
    year: int,
    work_dir: str | Path,
    sp: ScrapeParams,
    status_map: dict[str, str] | None = None,
    on_page: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """Fetch every page of every stream of `spec` not yet fetched; return {'pages': n_new, 'complete': bool}.

    `on_page(invitation, page_index, n_notes)` is called after each page is saved (progress, tests).
    """
    import openreview

    status_map = status_map or {}
    vdir = venue_dir(work_dir, spec)
    cursor = load_cursor(vdir, spec)
    new_pages = 0
    for k, (inv, forced) in enumerate(_streams(spec)):
        state = cursor["streams"].setdefault(inv, {"after": None, "pages": 0, "notes": 0, "done": False})
        while not state["done"]:
            try:
                notes = client.get_notes(
                    invitation=inv, details=sp.details, limit=sp.page_size, sort="id", after=state["after"]
                )
            except (openreview.OpenReviewException, requests.RequestException) as e:
                raise ScrapeError(
                    f"{spec.venue}: fetching {inv!r} failed after {sp.max_retries} retries; last saved cursor: "
                    f"after={state['after']!r} (page {state['pages']}, {state['notes']} notes); rerun to resume "
                    f"from it. Cause: {type(e).__name__}: {str(e)[:300]}"
                ) from None
            if notes:
                rows: dict[str, list[dict]] = {t: [] for t in TABLES}
                for note in notes:
                    for t, r in normalize_note(note, spec, year, status_map, forced).items():
                        rows[t].extend(r)
                atomic_write_json(vdir / "pages" / f"{k:02d}_{state['pages']:05d}.json", rows)
                state.update(after=notes[-1].id, pages=state["pages"] + 1, notes=state["notes"] + len(notes))
                new_pages += 1
            else:
                state["done"] = True
            atomic_write_json(vdir / "cursor.json", cursor)
            if notes and on_page is not None:
                on_page(inv, state["pages"] - 1, len(notes))
            log.info("%s %s: page %d, %d notes so far", spec.venue, inv, state["pages"], state["notes"])
    return {"pages": new_pages, "complete": all(s["done"] for s in cursor["streams"].values())}


def assemble_venue(work_dir: str | Path, spec: VenueSpec) -> dict[str, pd.DataFrame]:
    """The saved pages of a completely scraped venue -> tables. A note found in several streams (e.g. also
    listed as withdrawn) keeps the row of the later stream, which carries its final status."""
    vdir = venue_dir(work_dir, spec)
    cursor = load_cursor(vdir, spec)
    streams = _streams(spec)
    if not all(cursor["streams"].get(inv, {}).get("done") for inv, _ in streams):
        raise ScrapeError(f"{spec.venue}: scrape incomplete (cursor {vdir / 'cursor.json'}); rerun to resume")
    rows: dict[str, list[dict]] = {t: [] for t in TABLES}
    owner: dict[str, int] = {}
    for k, (inv, _) in enumerate(streams):
        for page in range(cursor["streams"][inv]["pages"]):
            part = json.loads((vdir / "pages" / f"{k:02d}_{page:05d}.json").read_text())
            for sub in part["submissions"]:
                owner[sub["note_id"]] = k
            for t in TABLES:
                rows[t].extend(dict(r, _stream=k) for r in part[t])
    out = {}
    for t in TABLES:
        df = pd.DataFrame(rows[t])
        if len(df):
            df = df[df["_stream"] == df["note_id"].map(owner)]
        out[t] = frame(t, df if len(df) else [])
    return out
