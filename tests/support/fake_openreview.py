"""A fake OpenReview API on 127.0.0.1 for tests and benchmarks: the endpoints the real openreview-py client calls.

- `GET /notes?invitation=&details=directReplies&limit=&sort=id&after=` -> `{"notes": [...], "count": N}` with
  cursor paging by note id (`after`), like the live API; `count` is always returned.
- `POST /login` -> a token (the client logs in when OPENREVIEW_USERNAME/PASSWORD are set); the password is
  remembered only to check that nothing else ever echoes it.
- Fault injection by request number (1-based, counting `/notes` requests): an int status (429, 500, 503) or
  ("slow", seconds). `hold_after_pages` makes every later page wait `hold_seconds` (to kill a client mid-scrape).
"""

from __future__ import annotations

import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

RATING_TEXT = {
    1: "Trivial or wrong",
    3: "Clear rejection",
    4: "Ok but not good enough - rejection",
    5: "Marginally below acceptance threshold",
    6: "Marginally above acceptance threshold",
    7: "Good paper, accept",
    8: "Top 50% of accepted papers, clear accept",
}


def _wrap(content: dict, api: int) -> dict:
    return {k: {"value": v} for k, v in content.items()} if api == 2 else content


def make_venue(
    venue: str, n_papers: int, n_withdrawn: int = 0, api: int = 1, seed: int = 0, decision_invitation: str = "Decision"
) -> dict[str, list[dict]]:
    """Synthetic submissions of one venue (notes with details.directReplies), keyed by invitation."""
    rng = random.Random(seed)
    inv_key = "invitations" if api == 2 else "invitation"

    def inv(name):
        return [name] if api == 2 else name

    notes = {f"{venue}/-/Blind_Submission": [], f"{venue}/-/Withdrawn_Submission": []}
    for i in range(n_papers + n_withdrawn):
        nid = f"{rng.getrandbits(40):010x}{i:04d}"
        withdrawn = i >= n_papers
        replies = []
        quality = rng.gauss(5, 1.2)
        for j in range(rng.choice([3, 3, 3, 4])):
            r = min(8, max(1, round(quality + rng.gauss(0, 1.0))))
            replies.append(
                {
                    "id": f"{nid}r{j}",
                    "forum": nid,
                    "replyto": nid,
                    "cdate": 1000 + j,
                    inv_key: inv(f"{venue}/Paper{i + 1}/-/Official_Review"),
                    "content": _wrap(
                        {
                            "rating": f"{r}: {RATING_TEXT.get(r, 'x')}",
                            "confidence": f"{rng.randint(1, 5)}: confident",
                            "review": "...",
                        },
                        api,
                    ),
                }
            )
        if not withdrawn:
            dec = "Accept (Poster)" if quality > 5.6 else "Reject"
            replies.append(
                {
                    "id": f"{nid}d",
                    "forum": nid,
                    "replyto": nid,
                    "cdate": 2000,
                    inv_key: inv(f"{venue}/Paper{i + 1}/-/{decision_invitation}"),
                    "content": _wrap({"decision": dec, "title": "Paper Decision"}, api),
                }
            )
        first = rng.choice(["Maria", "John", "Wei", "Anna", "David", "Sarah", "Kim"])
        note = {
            "id": nid,
            "forum": nid,
            "number": i + 1,
            "cdate": i,
            inv_key: inv(f"{venue}/-/{'Withdrawn' if withdrawn else 'Blind'}_Submission"),
            "content": _wrap(
                {
                    "title": f"Paper {i}",
                    "keywords": ["deep learning", "robustness"],
                    "authors": [f"{first} Doe", "Alex Roe"],
                    "authorids": [f"{first.lower()}@cs.cmu.edu", "~Alex_Roe1"],
                },
                api,
            ),
            "details": {"directReplies": replies},
        }
        key = f"{venue}/-/{'Withdrawn' if withdrawn else 'Blind'}_Submission"
        notes[key].append(note)
    return notes


class FakeOpenReview:
    """Threaded HTTP server; use as a context manager: `with FakeOpenReview(notes) as srv: srv.baseurl`."""

    def __init__(
        self,
        notes: dict[str, list[dict]],
        faults: dict[int, object] | None = None,
        hold_after_pages: int | None = None,
        hold_seconds: float = 0.0,
        max_limit: int = 1000,
    ):
        self.notes = {k: sorted(v, key=lambda n: n["id"]) for k, v in notes.items()}
        self.faults = dict(faults or {})
        self.hold_after_pages, self.hold_seconds, self.max_limit = hold_after_pages, hold_seconds, max_limit
        self.requests: list[dict] = []
        self.pages_served = 0
        self.logins: list[str] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def baseurl(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()

    def _handler(self):
        srv = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                pass

            def _send(self, status: int, body: dict, headers: dict | None = None):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(n) or b"{}")
                if urlparse(self.path).path.endswith("/login"):
                    srv.logins.append(body.get("id"))
                    return self._send(
                        200, {"token": "fake-token", "user": {"id": "~Tester1", "profile": {"id": "~Tester1"}}}
                    )
                self._send(404, {"name": "NotFound", "message": self.path})

            def do_GET(self):
                url = urlparse(self.path)
                if url.path != "/notes":
                    return self._send(404, {"name": "NotFound", "message": url.path})
                q = {k: v[-1] for k, v in parse_qs(url.query).items()}
                with srv._lock:
                    srv.requests.append(q)
                    fault = srv.faults.pop(len(srv.requests), None)
                if isinstance(fault, int):
                    return self._send(
                        fault,
                        {"name": "Fault", "message": f"injected {fault}"},
                        {"Retry-After": "0"} if fault == 429 else None,
                    )
                if isinstance(fault, tuple) and fault[0] == "slow":
                    time.sleep(fault[1])
                if srv.hold_after_pages is not None and srv.pages_served >= srv.hold_after_pages:
                    time.sleep(srv.hold_seconds)
                items = srv.notes.get(q.get("invitation"), [])
                if q.get("after"):
                    items = [n for n in items if n["id"] > q["after"]]
                limit = min(int(q.get("limit") or 1000), srv.max_limit)
                offset = int(q.get("offset") or 0)
                page = items[offset : offset + limit]
                if q.get("details") != "directReplies":
                    page = [{k: v for k, v in n.items() if k != "details"} for n in page]
                with srv._lock:
                    srv.pages_served += 1
                self._send(200, {"notes": page, "count": len(srv.notes.get(q.get("invitation"), []))})

        return Handler
