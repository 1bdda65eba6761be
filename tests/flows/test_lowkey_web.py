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

    from tenfold.studies.lowkey.facemodels import build, surrogate_spec
    from tenfold.studies.lowkey.params import LowKeyAttack, LowKeyWeb
    from tenfold.studies.lowkey.web import Protector, make_server

    torch.manual_seed(0)
    prot = Protector(
        [build("toy", surrogate_spec()).eval()], LowKeyAttack(n_iters=3), LowKeyWeb(max_bytes=400_000, max_side=320)
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


@pytest.mark.slow
def test_api_protects_every_face_of_a_large_photo(server):
    """Two CelebA photos side by side, upscaled to 1000x500: downscaled to 320 px wide, both faces filtered."""
    from PIL import Image

    a, b = (np.asarray(Image.open(_celeba_photo(k)).convert("RGB")) for k in (0, 40))
    big = np.asarray(Image.fromarray(np.concatenate([a, b], 1)).resize((1000, 500)))
    jpeg = _png(big, "JPEG")  # as a PNG it is above the test server's 400 kB limit
    code, body = _post(server, jpeg)
    assert code == 202 and body["faces"] == 2 and (body["width"], body["height"]) == (320, 160)
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
def test_browser_celeba_photo_and_errors(server, tmp_path):
    from PIL import Image
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    face = tmp_path / "celeba.jpg"
    shutil.copy(_celeba_photo(), face)
    assert Image.open(face).size == (250, 250)
    Image.fromarray(np.full((200, 300, 3), 90, np.uint8)).save(tmp_path / "wall.png")  # no face
    (tmp_path / "notes.txt").write_text("not a photo")
    drv = _chromium()
    try:
        drv.get(server)
        assert "LowKey" in drv.title

        def upload(path):
            drv.execute_script("document.getElementById('error').textContent=''")
            drv.find_element(By.ID, "file").send_keys(str(path))
            drv.find_element(By.ID, "submit").click()

        wait = WebDriverWait(drv, 120)
        for name, message in (("notes.txt", "not an image"), ("wall.png", "no face")):
            upload(tmp_path / name)
            wait.until(lambda d: d.find_element(By.ID, "error").text)
            assert message in drv.find_element(By.ID, "error").text, name
        upload(face)
        t0 = time.time()
        while drv.find_element(By.ID, "result").get_attribute("hidden") is not None and time.time() - t0 < 300:
            assert not drv.find_element(By.ID, "error").text
            time.sleep(0.1)
        assert drv.find_element(By.ID, "status").text == "done"
        assert drv.find_element(By.ID, "progress").get_attribute("value") == "100"
        href = drv.find_element(By.ID, "download").get_attribute("href")
        png = urllib.request.urlopen(href, timeout=30).read()
        assert png[:4] == b"\x89PNG" and Image.open(io.BytesIO(png)).size == (250, 250)
        loaded = drv.execute_script("const i=document.getElementById('preview'); return i.complete && i.naturalWidth")
        assert loaded == 250
    finally:
        drv.quit()
