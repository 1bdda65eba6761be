"""Offline source: the ICLR 2017-2020 dumps under ../shared/data/openreview mapped into the normalized tables."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from tenfold.studies.openreview.people import institution_domain
from tenfold.studies.openreview.schema import TABLES, TableError, category, frame

SOURCE = "offline dump (../shared/data/openreview, paperlists collection)"


def _split(s: str | None) -> list[str]:
    return [p.strip() for p in (s or "").split(";")] if s else []


def _numbers(s: str | None, what: str, where: str) -> list[float]:
    out = []
    for p in _split(s):
        try:
            out.append(float(p.split(":")[0]))
        except ValueError:
            raise TableError(f"{where}: {what} {p!r} is not a number") from None
    return out


def load_year(
    path: str | Path,
    year: int,
    venue: str,
    status_map: dict[str, str],
    rating_scale: list[float] | None = None,
    citations_path: str | Path | None = None,
) -> dict[str, pd.DataFrame]:
    """One year's dump -> the five tables. Ratings outside `rating_scale` are an error naming the paper."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no offline dump for year {year}; add it or use openreview.source: live")
    try:
        records = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise TableError(f"{path}: not valid JSON ({e})") from None
    subs, reviews, authors, decisions = [], [], [], []
    scale = set(rating_scale) if rating_scale else None
    for r in records:
        nid = r.get("id")
        where = f"{path.name} paper {nid}"
        if not nid or "status" not in r:
            raise TableError(f"{where}: record lacks `id` or `status`")
        subs.append(
            {
                "year": year,
                "venue": venue,
                "note_id": nid,
                "title": r.get("title", ""),
                "keywords": r.get("keywords", ""),
                "source": SOURCE,
            }
        )
        decisions.append(
            {
                "year": year,
                "note_id": nid,
                "decision": r["status"],
                "category": category(r["status"], status_map, where),
            }
        )
        ratings = _numbers(r.get("rating"), "rating", where)
        conf = _numbers(r.get("confidence"), "confidence", where)
        if conf and len(conf) != len(ratings):
            raise TableError(f"{where}: {len(ratings)} ratings but {len(conf)} confidences")
        if scale is not None and not set(ratings) <= scale:
            raise TableError(
                f"{where}: ratings {sorted(set(ratings) - scale)} outside the {year} scale "
                f"{sorted(scale)}; set openreview.venues.{year}.rating_scale"
            )
        for i, rating in enumerate(ratings):
            reviews.append(
                {
                    "year": year,
                    "note_id": nid,
                    "review_id": f"{nid}#{i}",
                    "review_index": i,
                    "rating": rating,
                    "confidence": conf[i] if conf else None,
                }
            )
        names, ids = _split(r.get("author")), _split(r.get("authorids"))
        for pos, name in enumerate(names):
            aid = ids[pos] if pos < len(ids) else None
            authors.append(
                {
                    "year": year,
                    "note_id": nid,
                    "position": pos,
                    "name": name,
                    "author_id": aid,
                    "domain": institution_domain(aid),
                }
            )
    cites = []
    if citations_path is not None and Path(citations_path).exists():
        for c in json.loads(Path(citations_path).read_text()):
            v = c.get("gs_citation")
            if c.get("id") and v not in (None, "") and float(v) >= 0:  # -1 marks "not found" in the collection
                cites.append({"year": year, "note_id": c["id"], "citations": float(v)})
    rows = {"submissions": subs, "reviews": reviews, "authors": authors, "decisions": decisions, "citations": cites}
    return {name: frame(name, rows[name]) for name in TABLES}
