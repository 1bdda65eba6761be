"""The LowKey web tool end to end: the HTTP API (clear errors, downscaling, several faces, PNG out), bad weights
refused before serving, and the page in headless Chromium (a 250x250 CelebA photo, a photo with no face).

The browser test needs Debian's `chromium` + `chromium-driver` and the `selenium` package (skipped otherwise).
The server runs a randomly initialised MobileFaceNet with 3 filter steps: what is tested is the tool, not the
filter's strength (the study measures that)."""

import io
import json
import shutil
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _celeba_photo(k: int = 0) -> Path:
    from tenfold.components.data.sources import DataMissing, locate, shared_root

    try:
        folder = locate("celeba_crops", shared_root(project_root=ROOT))
    except DataMissing:
        pytest.skip("shared CelebA crops not available")
    return sorted((folder / "images").glob("*/*.jpg"))[k]


def _chromium():
    chrome = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not chrome or not driver:
        pytest.skip("headless Chromium not installed (apt-get install -y chromium chromium-driver)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium not installed (pip install selenium)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chrome
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        opts.add_argument(a)
    return webdriver.Chrome(service=Service(driver), options=opts)


@pytest.fixture(scope="module")
def server():
    import torch

    from tenfold.components.models.facemodels import build, surrogate_spec
    from tenfold.studies.lowkey.params import LowKeyAttack, LowKeyWeb
    from tenfold.studies.lowkey.web import Protector, make_server

    torch.manual_seed(0)
    measured = {"dlib_rank1": 0.05, "face_ssim": 0.844, "heldout_rank1": 0.075, "run": "r1"}  # shown on the page
    prot = Protector(
        [build("toy", surrogate_spec()).eval()],
        LowKeyAttack(n_iters=3),
        LowKeyWeb(max_bytes=400_000, max_side=320),
        evidence=measured,
    )
    srv = make_server(prot, "127.0.0.1", 0)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/"
    srv.shutdown()
    srv.server_close()


def _png(arr: np.ndarray, fmt: str = "PNG") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


def _post(server: str, data: bytes) -> tuple[int, dict]:
    req = urllib.request.Request(server + "api/protect", data=data, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _result(server: str, job: str, limit: float = 300) -> bytes:
    t0 = time.time()
    while time.time() - t0 < limit:
        s = json.loads(urllib.request.urlopen(f"{server}api/jobs/{job}", timeout=30).read())
        assert s["state"] != "error", s["error"]
        if s["state"] == "done":
            return urllib.request.urlopen(f"{server}api/jobs/{job}/result", timeout=30).read()
        time.sleep(0.2)
    raise AssertionError("the job did not finish")


def test_api_errors_are_clear(server):
    code, body = _post(server, bytes(500_000))
    assert code == 413 and "too large" in body["error"]
    code, body = _post(server, b"this is a text file, not a photo")
    assert code == 400 and "not an image" in body["error"]
    code, body = _post(server, b"")
    assert code == 400 and "empty" in body["error"]
    code, body = _post(server, _png(np.full((120, 160, 3), 200, np.uint8)))
    assert code == 422 and "no face" in body["error"]
    code, body = _post(server, _png(np.full((4, 4, 3), 200, np.uint8)))
    assert code == 422


def test_measured_protection_is_read_only_for_the_tools_setting(tmp_path):
    from tenfold.studies.lowkey.params import LowKeyAttack
    from tenfold.studies.lowkey.web import evidence

    attack = LowKeyAttack()
    path = tmp_path / "lowkey.json"
    assert evidence(path, attack) is None  # no evaluation yet
    claims = [{"id": "dlib_rank1_filtered", "measured": 0.05}, {"id": "lowkey_ssim", "measured": 0.844}]
    results = {"claims": claims, "details": {"first_iters": attack.n_iters, "attack": attack.model_dump()}}
    path.write_text(json.dumps(results))
    assert evidence(path, attack) == {"dlib_rank1": 0.05, "face_ssim": 0.844, "heldout_rank1": None, "run": None}
    assert evidence(path, attack.model_copy(update={"n_iters": attack.n_iters + 5})) is None  # another setting
    assert evidence(path, attack.model_copy(update={"c_sim": attack.c_sim * 2})) is None


def test_difference_is_magnified_and_clipped():
    from tenfold.studies.lowkey.web import difference

    a = np.zeros((2, 2, 3), np.uint8)
    b = a.copy()
    b[0, 0] = [3, 30, 0]
    d = difference(a, b)
    assert d[0, 0].tolist() == [30, 255, 0] and d[1:].sum() == 0 and d.dtype == np.uint8


@pytest.mark.slow
def test_api_protects_every_face_of_a_large_photo(server):
    """Two CelebA photos side by side, upscaled to 1000x500: downscaled to 320 px wide, both faces filtered."""
    from PIL import Image

    a, b = (np.asarray(Image.open(_celeba_photo(k)).convert("RGB")) for k in (0, 40))
    big = np.asarray(Image.fromarray(np.concatenate([a, b], 1)).resize((1000, 500)))
    jpeg = _png(big, "JPEG")  # as a PNG it is above the test server's 400 kB limit
    code, body = _post(server, jpeg)
    assert code == 202 and body["faces"] == 2 and (body["width"], body["height"]) == (320, 160)
    left, right = sorted(body["boxes"])
    assert left[2] <= 170 and right[0] >= 150 and all(b[2] > b[0] and b[3] > b[1] for b in body["boxes"])
    assert all(0 <= b[0] < b[2] <= 320 and 0 <= b[1] < b[3] <= 160 for b in body["boxes"])  # inside the photo
    out = np.asarray(Image.open(io.BytesIO(_result(server, body["job"]))))
    assert out.shape == (160, 320, 3)
    with Image.open(io.BytesIO(jpeg)) as im:  # the tool's own decoding: reduced-scale JPEG draft, then LANCZOS
        im.draft("RGB", (320, 320))
        ref = im.convert("RGB")
    ref.thumbnail((320, 320), Image.Resampling.LANCZOS)
    small = np.asarray(ref).astype(int)
    diff = np.abs(out.astype(int) - small).sum(-1)
    assert diff[:, :160].mean() > 0.5 and diff[:, 160:].mean() > 0.5  # each half (face) was changed


def test_bad_weights_stop_the_tool_before_it_serves(tiny, tmp_path, capsys):
    from flows.cli import main

    params = tiny(["lowkey"])
    bad = tmp_path / "surrogates.pt"
    bad.write_bytes(b"not weights")
    (tmp_path / "surrogates.json").write_text(json.dumps({"sha256": "0" * 64, "surrogates": {}}))
    before = sorted(p.name for p in tmp_path.iterdir())
    rc = main(
        ["--params", str(params), "--root", str(tmp_path), "lowkey", "serve", "--surrogates", str(bad), "--port", "0"]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "SHA-256 differs" in err and "surrogates.pt" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


@pytest.mark.slow
def test_browser_queue_side_by_side_difference_download_and_errors(server, tmp_path):
    """The page as a person uses it, in a narrow window: two photos queued at once, each shown beside its protected
    version with the face box, the difference toggle (by keyboard), the setting with its measured protection, the
    download; a text file and a photo without a face give their errors. A screenshot is kept as an artifact."""
    import os

    from PIL import Image
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    faces = [tmp_path / f"celeba{k}.jpg" for k in (0, 1)]
    for k, f in enumerate(faces):
        shutil.copy(_celeba_photo(k * 40), f)
        assert Image.open(f).size == (250, 250)
    Image.fromarray(np.full((200, 300, 3), 90, np.uint8)).save(tmp_path / "wall.png")  # no face
    (tmp_path / "notes.txt").write_text("not a photo")
    drv = _chromium()
    try:
        drv.set_window_size(420, 1400)  # a phone-width window
        drv.get(server)
        assert "LowKey" in drv.title
        wait = WebDriverWait(drv, 300)
        wait.until(lambda d: "Setting:" in d.find_element(By.ID, "setting").text)
        assert "dlib matched 5% of protected test photos" in drv.find_element(By.ID, "setting").text

        def submit(*paths):
            drv.execute_script("document.getElementById('error').textContent=''")
            drv.find_element(By.ID, "file").send_keys("\n".join(str(p) for p in paths))
            drv.find_element(By.ID, "submit").click()

        for name, message in (("notes.txt", "not an image"), ("wall.png", "no face")):
            submit(tmp_path / name)
            wait.until(lambda d: d.find_element(By.ID, "error").text)
            assert message in drv.find_element(By.ID, "error").text, name
        submit(*faces)  # two photos in one go: a queue with one card each
        cards = lambda: [c for c in drv.find_elements(By.CSS_SELECTOR, "#queue .item") if ".jpg" in c.text]
        wait.until(
            lambda d: len(cards()) == 2 and all(c.find_element(By.CLASS_NAME, "status").text == "done" for c in cards())
        )
        for card in cards():
            assert card.find_element(By.TAG_NAME, "progress").get_attribute("value") == "100"
            found = card.find_element(By.CLASS_NAME, "faces").text  # "1 face found ..." / "2 faces found ..."
            assert "found and protected" in found and int(found.split()[0]) >= 1
            assert len(card.find_elements(By.CLASS_NAME, "box")) == int(found.split()[0])
            for cls in ("original", "protected"):
                img = card.find_element(By.CLASS_NAME, cls)
                wait.until(lambda d, img=img: d.execute_script("return arguments[0].complete", img))
                assert drv.execute_script("return arguments[0].naturalWidth", img) == 250, cls
            photo = card.find_element(By.CLASS_NAME, "original").rect
            for box in card.find_elements(By.CLASS_NAME, "box"):  # drawn on the face, inside the original
                r = box.rect
                assert r["width"] > 10 and r["height"] > 10
                assert photo["x"] - 1 <= r["x"] and r["x"] + r["width"] <= photo["x"] + photo["width"] + 1
                assert photo["y"] - 1 <= r["y"] and r["y"] + r["height"] <= photo["y"] + photo["height"] + 1
            png = urllib.request.urlopen(card.find_element(By.CLASS_NAME, "download").get_attribute("href")).read()
            assert png[:4] == b"\x89PNG" and Image.open(io.BytesIO(png)).size == (250, 250)
        first = cards()[0]
        toggle = first.find_element(By.CLASS_NAME, "toggle")
        toggle.send_keys(Keys.ENTER)  # keyboard: a real button
        assert toggle.get_attribute("aria-pressed") == "true"
        assert first.find_element(By.CLASS_NAME, "protected").get_attribute("src").endswith("/difference")
        assert drv.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")  # no sideways
        out = Path(os.environ.get("TENFOLD_TEST_ARTIFACTS", ROOT / "test-artifacts"))
        out.mkdir(parents=True, exist_ok=True)
        assert drv.save_screenshot(str(out / "lowkey_web.png"))
    finally:
        drv.quit()
