"""End to end: the LowKey web page in headless Chromium (upload, progress, download, clear errors).

Needs Debian's `chromium` + `chromium-driver` and the `selenium` package; skipped with the reason otherwise.
"""

import json
import shutil
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest


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

    from tenfold.studies.lowkey.models import FaceNet
    from tenfold.studies.lowkey.params import LowKeyAttack, LowKeyWeb
    from tenfold.studies.lowkey.web import Protector, make_server

    torch.manual_seed(0)
    prot = Protector(
        [FaceNet("vgg", 32, 16, 4).eval()], 32, LowKeyAttack(n_iters=3), LowKeyWeb(max_bytes=300_000, max_side=160)
    )
    srv = make_server(prot, "127.0.0.1", 0)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/"
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from PIL import Image
    from skimage.data import astronaut

    d = tmp_path_factory.mktemp("uploads")
    Image.fromarray(astronaut()).resize((160, 160)).save(d / "face.png")
    Image.fromarray(np.full((64, 64, 3), 200, np.uint8)).save(d / "blank.png")
    (d / "notes.txt").write_text("not a photo")
    (d / "huge.png").write_bytes(b"\x89PNG" + bytes(400_000))
    return d


def test_api_rejects_a_huge_upload_before_reading_it(server):
    req = urllib.request.Request(server + "api/protect", data=bytes(400_000), method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=30)
    assert e.value.code == 413 and "too large" in json.loads(e.value.read())["error"]


@pytest.mark.slow
def test_browser_upload_progress_download_and_errors(server, files):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    drv = _chromium()
    try:
        drv.get(server)
        assert "LowKey" in drv.title

        def upload(name):
            drv.find_element(By.ID, "error").get_attribute("textContent")
            drv.find_element(By.ID, "file").send_keys(str(files / name))
            drv.find_element(By.ID, "submit").click()

        wait = WebDriverWait(drv, 90)
        for name, message in (("notes.txt", "not an image"), ("blank.png", "no face"), ("huge.png", "too large")):
            drv.execute_script("document.getElementById('error').textContent=''")
            upload(name)
            wait.until(lambda d: d.find_element(By.ID, "error").text)
            assert message in drv.find_element(By.ID, "error").text, name
        drv.execute_script("document.getElementById('error').textContent=''")
        upload("face.png")
        seen = set()
        t0 = time.time()
        while drv.find_element(By.ID, "result").get_attribute("hidden") is not None and time.time() - t0 < 90:
            seen.add(int(drv.find_element(By.ID, "progress").get_attribute("value")))
            assert not drv.find_element(By.ID, "error").text
            time.sleep(0.05)
        assert drv.find_element(By.ID, "progress").get_attribute("value") == "100"
        assert drv.find_element(By.ID, "status").text == "done"
        href = drv.find_element(By.ID, "download").get_attribute("href")
        png = urllib.request.urlopen(href, timeout=30).read()
        assert png[:4] == b"\x89PNG"
        loaded = drv.execute_script("const i=document.getElementById('preview'); return i.complete && i.naturalWidth")
        assert loaded == 160
    finally:
        drv.quit()
