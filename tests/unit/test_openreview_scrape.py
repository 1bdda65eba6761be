"""The scraper against a fake OpenReview API on 127.0.0.1, driven by the real openreview-py client."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import openreview
import pytest

from tenfold.studies.openreview.params import ScrapeParams, VenueSpec
from tenfold.studies.openreview.schema import TableError, concat, validate
from tenfold.studies.openreview.scrape import ScrapeError, assemble_venue, configure_retries, scrape_venue
from tests.support.fake_openreview import FakeOpenReview, make_venue

ROOT = Path(__file__).resolve().parents[2]
VENUE = "ICLR.cc/2020/Conference"
SP = ScrapeParams(page_size=25, max_retries=3, backoff_factor=0.01, backoff_max=0.05, backoff_jitter=0.01, timeout=1.0)


def spec(api=1):
    return VenueSpec(
        venue=VENUE,
        api=api,
        submission_invitation=f"{VENUE}/-/Blind_Submission",
        extra_invitations={"Withdraw": f"{VENUE}/-/Withdrawn_Submission"},
    )


def client(url, api=1):
    c = openreview.Client(baseurl=url) if api == 1 else openreview.api.OpenReviewClient(baseurl=url)
    configure_retries(c, SP)
    return c


def expected_ids(notes):
    return sorted(n["id"] for ns in notes.values() for n in ns)


def tables_of(work, s):
    t = assemble_venue(work, s)
    validate(concat([t]))
    return t


@pytest.mark.parametrize("api", [1, 2])
def test_faults_are_retried_and_tables_complete(tmp_path, api):
    notes = make_venue(VENUE, 110, 12, api=api, seed=api)
    faults = {1: 429, 2: 500, 4: 503, 6: ("slow", 0.3), 7: ("slow", 1.6)}  # 1.6 s > timeout: retried
    with FakeOpenReview(notes, faults=faults) as srv:
        stats = scrape_venue(client(srv.baseurl, api), spec(api), 2020, tmp_path, SP)
    assert stats["complete"] and not srv.faults
    t = tables_of(tmp_path, spec(api))
    assert sorted(t["submissions"].note_id) == expected_ids(notes)
    n_reviews = sum(
        1
        for ns in notes.values()
        for n in ns
        for r in n["details"]["directReplies"]
        if "Official_Review" in str(r.get("invitation") or r.get("invitations"))
    )
    assert len(t["reviews"]) == n_reviews
    assert set(t["decisions"].category) == {"accept", "reject", "withdrawn"}
    assert (t["decisions"].category == "withdrawn").sum() == 12
    assert t["authors"].groupby("note_id").position.apply(list).map(lambda p: p == [0, 1]).all()


def test_rerun_fetches_nothing_new(tmp_path):
    notes = make_venue(VENUE, 30, 0)
    with FakeOpenReview(notes) as srv:
        scrape_venue(client(srv.baseurl), spec(), 2020, tmp_path, SP)
        before = len(srv.requests)
        assert scrape_venue(client(srv.baseurl), spec(), 2020, tmp_path, SP)["pages"] == 0
        assert len(srv.requests) == before


def test_exhausted_retries_name_venue_and_cursor(tmp_path):
    notes = make_venue(VENUE, 60, 0)
    faults = {3 + i: 500 for i in range(SP.max_retries + 1)}  # third page fails every try
    with FakeOpenReview(notes, faults=faults) as srv:
        with pytest.raises(ScrapeError) as e:
            scrape_venue(client(srv.baseurl), spec(), 2020, tmp_path, SP)
        msg = str(e.value)
        assert VENUE in msg and "page 2" in msg and "after=" in msg
        # resume from the cursor once the API is healthy again
        stats = scrape_venue(client(srv.baseurl), spec(), 2020, tmp_path, SP)
    assert stats["complete"]
    assert sorted(tables_of(tmp_path, spec())["submissions"].note_id) == expected_ids(notes)


@pytest.mark.slow  # a fresh interpreter imports openreview-py: seconds
def test_kill_mid_scrape_resumes_without_loss_or_duplicates(tmp_path):
    notes = make_venue(VENUE, 200, 20, seed=3)
    code = (
        f"import sys, types; sys.path[:0] = [{str(ROOT)!r}, {str(Path(__file__).parent)!r}]\n"
        # a site-packages `tests` package (shipped by a dependency) would shadow the project's tests/ folder
        f"sys.modules['tests'] = types.ModuleType('tests'); sys.modules['tests'].__path__ = [{str(ROOT / 'tests')!r}]\n"
        "from test_openreview_scrape import client, spec, SP\n"
        "from tenfold.studies.openreview.scrape import scrape_venue\n"
        f"scrape_venue(client(sys.argv[1]), spec(), 2020, {str(tmp_path)!r}, SP)\n"
    )
    with FakeOpenReview(notes, hold_after_pages=3, hold_seconds=0.5) as srv:
        proc = subprocess.Popen([sys.executable, "-c", code, srv.baseurl], cwd=ROOT)
        cursor = tmp_path / "ICLR_cc_2020_Conference" / "cursor.json"
        deadline = time.time() + 30
        while time.time() < deadline and not (cursor.exists() and '"pages": 3' in cursor.read_text()):
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert proc.returncode == -signal.SIGKILL
        with pytest.raises(ScrapeError, match="incomplete"):
            assemble_venue(tmp_path, spec())
        srv.hold_after_pages = None
        served = srv.pages_served
        scrape_venue(client(srv.baseurl), spec(), 2020, tmp_path, SP)
        assert srv.requests[served]["after"]  # resumed from the cursor, not from the start
    t = tables_of(tmp_path, spec())
    assert sorted(t["submissions"].note_id) == expected_ids(notes)
    assert not t["reviews"].duplicated(["note_id", "review_id"]).any()


def test_unknown_decision_and_rating_field_fail_clearly(tmp_path):
    notes = make_venue(VENUE, 5, 0)
    notes[f"{VENUE}/-/Blind_Submission"][0]["details"]["directReplies"][-1]["content"]["decision"] = "Accept (Hug)"
    with FakeOpenReview(notes) as srv:
        with pytest.raises(TableError, match="Accept \\(Hug\\).*status_map"):
            scrape_venue(client(srv.baseurl), spec(), 2020, tmp_path / "a", SP)
        bad = spec().model_copy(update={"rating_field": "score"})
        with pytest.raises(TableError, match="no field 'score'"):
            scrape_venue(client(srv.baseurl), bad, 2020, tmp_path / "b", SP)


def test_credentials_are_used_but_never_logged_or_written(tmp_path, monkeypatch, capfd, caplog):
    secret = "s3cr3t-Pa55word-xyz"
    monkeypatch.setenv("OPENREVIEW_USERNAME", "tester@example.org")
    monkeypatch.setenv("OPENREVIEW_PASSWORD", secret)
    notes = make_venue(VENUE, 30, 3)
    with FakeOpenReview(notes, faults={2: 429, 3: 500}) as srv:
        c = openreview.Client(baseurl=srv.baseurl)
        configure_retries(c, SP)
        scrape_venue(c, spec(), 2020, tmp_path, SP)
    assert srv.logins == ["tester@example.org"]  # the client logged in with the env credentials
    out, err = capfd.readouterr()
    assert secret not in out + err + caplog.text
    for f in tmp_path.rglob("*"):
        if f.is_file():
            assert secret.encode() not in f.read_bytes(), f


@pytest.mark.slow  # imports the Prefect task module: seconds
def test_live_task_shows_scrape_progress_per_page(tmp_path, capsys, monkeypatch):
    import logging

    import tasks.openreview as T
    from tasks.openreview import build_live

    monkeypatch.setattr(T, "get_run_logger", lambda: logging.getLogger("test"))  # no Prefect run here
    monkeypatch.setenv("TQDM_DISABLE", "1")  # as on a CI runner: asked for explicitly, the bar still shows
    from tenfold.studies.openreview.params import OpenReviewParams

    notes = make_venue(VENUE, 60, 8, seed=5)
    with FakeOpenReview(notes) as srv:
        scrape = SP.model_copy(update={"baseurl": srv.baseurl})
        p = OpenReviewParams(source="live", years=[2020], venues={2020: spec()}, scrape=scrape)
        tables, sources = build_live.fn(p, str(tmp_path), show_progress=True)
    assert sources[2020].startswith("live") and sorted(tables["submissions"].note_id) == expected_ids(notes)
    err = capsys.readouterr().err
    assert "openreview: scrape pages: " in err  # tqdm's counting bar (60 notes at 25 a page: 3 pages)
