"""The normalized OpenReview tables: one schema for every year and source (offline dumps or the live API).

| table | one row per | key |
|---|---|---|
| submissions | submission (forum) | (year, note_id) |
| reviews | official review | (year, note_id, review_id) |
| authors | paper-author, with 0-based position | (year, note_id, position) |
| decisions | submission, its decision string and category | (year, note_id) |
| citations | submission with a citation count (offline, 2017-2018) | (year, note_id) |
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from tenfold.core.runtime import atomic_write_with

SCHEMAS: dict[str, pa.Schema] = {
    "submissions": pa.schema(
        [
            ("year", pa.int32()),
            ("venue", pa.string()),
            ("note_id", pa.string()),
            ("title", pa.string()),
            ("keywords", pa.string()),
            ("source", pa.string()),
        ]
    ),
    "reviews": pa.schema(
        [
            ("year", pa.int32()),
            ("note_id", pa.string()),
            ("review_id", pa.string()),
            ("review_index", pa.int32()),
            ("rating", pa.float64()),
            ("confidence", pa.float64()),
        ]
    ),
    "authors": pa.schema(
        [
            ("year", pa.int32()),
            ("note_id", pa.string()),
            ("position", pa.int32()),
            ("name", pa.string()),
            ("author_id", pa.string()),
            ("domain", pa.string()),
        ]
    ),
    "decisions": pa.schema(
        [("year", pa.int32()), ("note_id", pa.string()), ("decision", pa.string()), ("category", pa.string())]
    ),
    "citations": pa.schema([("year", pa.int32()), ("note_id", pa.string()), ("citations", pa.float64())]),
}
KEYS: dict[str, list[str]] = {
    "submissions": ["year", "note_id"],
    "reviews": ["year", "note_id", "review_id"],
    "authors": ["year", "note_id", "position"],
    "decisions": ["year", "note_id"],
    "citations": ["year", "note_id"],
}
TABLES = tuple(SCHEMAS)

# Decision / status vocabulary of OpenReview (ICLR 2017-2020 pages and API); extend via openreview.status_map.
DEFAULT_STATUS_MAP: dict[str, str] = {
    "Oral": "accept",
    "Poster": "accept",
    "Spotlight": "accept",
    "Talk": "accept",
    "Accept (Oral)": "accept",
    "Accept (Poster)": "accept",
    "Accept (Spotlight)": "accept",
    "Accept (Talk)": "accept",
    "Reject": "reject",
    "Workshop": "workshop",
    "Invite to Workshop Track": "workshop",
    "Withdraw": "withdrawn",
    "Withdrawn": "withdrawn",
    "Desk Reject": "desk_reject",
    "Desk Rejected": "desk_reject",
    "Active": "unknown",
}


class TableError(ValueError):
    """A table does not match its schema or has duplicate keys; the message names table and column."""


def category(decision: str, status_map: dict[str, str], where: str) -> str:
    """Map a decision/status string to its category; an unknown string is an error naming it and `where`."""
    merged = {**DEFAULT_STATUS_MAP, **status_map}
    if decision not in merged:
        raise TableError(
            f"{where}: unknown decision/status {decision!r}; add it to openreview.status_map (known: {sorted(merged)})"
        )
    return merged[decision]


def frame(name: str, rows: list[dict] | pd.DataFrame) -> pd.DataFrame:
    """Rows -> a DataFrame with exactly the columns and dtypes of table `name`."""
    schema = SCHEMAS[name]
    df = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows, columns=schema.names)
    missing = [c for c in schema.names if c not in df.columns]
    if missing:
        raise TableError(f"table {name}: missing columns {missing}")
    return pa.Table.from_pandas(df[schema.names], schema=schema, preserve_index=False).to_pandas()


def validate(tables: dict[str, pd.DataFrame]) -> None:
    """Every table present, schema-conformant and free of duplicate keys; reviews/decisions refer to submissions."""
    for name in TABLES:
        if name not in tables:
            raise TableError(f"table {name} is missing")
        df = frame(name, tables[name])
        dup = df.duplicated(KEYS[name])
        if dup.any():
            raise TableError(
                f"table {name}: {int(dup.sum())} duplicate keys {KEYS[name]}, e.g. "
                f"{df.loc[dup, KEYS[name]].iloc[0].tolist()}"
            )
    subs = set(zip(tables["submissions"].year, tables["submissions"].note_id))
    for name in ("reviews", "authors", "decisions"):
        orphans = set(zip(tables[name].year, tables[name].note_id)) - subs
        if orphans:
            raise TableError(f"table {name}: {len(orphans)} rows refer to unknown submissions, e.g. {min(orphans)}")


def write_tables(tables: dict[str, pd.DataFrame], directory: str | Path) -> dict[str, Path]:
    """Validate, then write `<directory>/<table>.parquet` atomically (sorted by key, so equal data, equal bytes)."""
    validate(tables)
    out = {}
    for name in TABLES:
        df = frame(name, tables[name]).sort_values(KEYS[name], kind="stable").reset_index(drop=True)
        table = pa.Table.from_pandas(df, schema=SCHEMAS[name], preserve_index=False)
        path = Path(directory) / f"{name}.parquet"
        out[name] = atomic_write_with(path, lambda tmp, t=table: pq.write_table(t, tmp))
    return out


def read_tables(directory: str | Path) -> dict[str, pd.DataFrame]:
    """Read and validate the tables written by `write_tables`; a missing file names the stage to run."""
    directory = Path(directory)
    out = {}
    for name in TABLES:
        path = directory / f"{name}.parquet"
        if not path.exists():
            raise FileNotFoundError(f"{path}: table missing; run `tenfold run scrape_openreview` first")
        out[name] = frame(name, pq.read_table(path).to_pandas())
    validate(out)
    return out


def concat(parts: list[dict[str, pd.DataFrame]]) -> dict[str, pd.DataFrame]:
    """Stack several table sets (e.g. years); keys must stay unique (checked by `validate`)."""
    return {name: frame(name, pd.concat([p[name] for p in parts if name in p], ignore_index=True)) for name in TABLES}
