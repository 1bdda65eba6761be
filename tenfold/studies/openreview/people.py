"""Authors' institutions (from e-mail domains) and name-based gender inference (offline dictionary).

Name-based gender inference is coarse: it guesses a binary label from a first name using a dictionary of
name frequencies per country; it cannot see non-binary identities, is weaker for names from some regions (many
Chinese and Korean given names are "unknown" or "andy"), and is wrong for some individuals. Report its coverage.
"""

from __future__ import annotations

import functools

_SECOND_LEVEL = {"ac", "edu", "co", "com", "org", "gov", "net", "go", "or", "ne", "res"}


def institution_domain(author_id: str | None) -> str | None:
    """`kossen@stud.uni-heidelberg.de` -> `uni-heidelberg.de`; `x@cs.ox.ac.uk` -> `ox.ac.uk`; profile ids -> None."""
    if not author_id or "@" not in author_id:
        return None
    host = author_id.rsplit("@", 1)[1].strip().strip(".").lower()
    labels = [p for p in host.split(".") if p]
    if len(labels) < 2:
        return None
    keep = 3 if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL else 2
    return ".".join(labels[-keep:])


def first_name(full_name: str | None) -> str | None:
    """The first given name: `Jannik Kossen` -> `Jannik`; `J. Smith` -> None (initials carry no gender)."""
    if not full_name:
        return None
    for token in full_name.replace("-", " ").split():
        t = token.strip(".,")
        if len(t) > 1 and t.isalpha():
            return t[:1].upper() + t[1:].lower()
    return None


@functools.lru_cache(maxsize=1)
def _detector():
    import gender_guesser.detector as gd

    return gd.Detector(case_sensitive=False)


def infer_gender(full_name: str | None, min_confidence: str = "mostly") -> str:
    """`male`, `female` or `unknown` from the first name. `mostly` accepts mostly_male/mostly_female; `sure` does not.
    The dictionary's `andy` (androgynous) and names it does not know are `unknown`."""
    name = first_name(full_name)
    if name is None:
        return "unknown"
    g = _detector().get_gender(name)
    if g in ("male", "female"):
        return g
    if min_confidence == "mostly" and g in ("mostly_male", "mostly_female"):
        return g.split("_", 1)[1]
    return "unknown"
