"""The LowKey web tool: a page where a person uploads a photo and downloads the protected one.

Standard library only (`http.server`). Flow of one request:
  POST /api/protect (raw image bytes)  -> 413 if larger than `max_bytes`, 400 if not an image,
                                          422 if no face is detected, else 202 {"job": id}
  GET  /api/jobs/<id>                  -> {"state": running|done|error, "done": k, "total": n, "error": ...}
  GET  /api/jobs/<id>/result           -> the protected PNG as an attachment
The page shows upload progress, then the filter's iteration progress, then a download link and a preview.
One photo is filtered at a time (a lock): the CPU is the bottleneck.
"""

from __future__ import annotations

import io
import json
import threading
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import torch

from tenfold.studies.lowkey.attack import LowKey
from tenfold.studies.lowkey.params import LowKeyAttack, LowKeyWeb
from tenfold.studies.lowkey.pipeline import Detector, alignment_theta, to_tensor, to_uint8


class UploadError(ValueError):
    """A bad upload; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


class Protector:
    """Decode, check and filter one photo at full resolution (downscaled to `max_side` if larger)."""

    def __init__(self, models, crop: int, attack: LowKeyAttack, web: LowKeyWeb, min_face_size: int = 20):
        self.lowkey, self.crop, self.web = LowKey(models, crop, attack), crop, web
        self.detector = Detector(min_face_size)
        self.lock = threading.Lock()

    def decode(self, data: bytes) -> tuple[np.ndarray, torch.Tensor]:
        """Bytes -> (RGB uint8 image, alignment theta); raises UploadError for a non-image or a faceless photo."""
        from PIL import Image, UnidentifiedImageError

        if len(data) > self.web.max_bytes:
            raise UploadError(f"file too large: {len(data)} bytes (limit {self.web.max_bytes})", 413)
        if not data:
            raise UploadError("empty upload: choose a photo first", 400)
        try:
            with Image.open(io.BytesIO(data)) as im:
                im.load()
                rgb = im.convert("RGB")
        except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as e:
            raise UploadError(f"not an image this tool can read (PNG, JPEG, ...): {e}", 400) from None
        if max(rgb.size) > self.web.max_side:
            rgb.thumbnail((self.web.max_side, self.web.max_side))
        img = np.asarray(rgb, np.uint8)
        pts = self.detector.landmarks(img[None])[0]
        if pts is None:
            raise UploadError("no face detected in this photo: upload a photo with a clearly visible face", 422)
        return img, torch.from_numpy(alignment_theta(pts, img.shape[:2], self.crop))[None]

    def protect(self, img: np.ndarray, theta: torch.Tensor, progress=None) -> bytes:
        """The protected photo as PNG bytes."""
        from PIL import Image

        with self.lock:
            adv, _ = self.lowkey.protect(to_tensor(img[None]), theta, seed=0, progress=progress)
        buf = io.BytesIO()
        Image.fromarray(to_uint8(adv)[0]).save(buf, format="PNG")
        return buf.getvalue()


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>LowKey: protect your photo</title>
<style>body{font-family:sans-serif;max-width:40em;margin:2em auto}#error{color:#b00}img{max-width:18em}</style>
</head><body>
<h1>LowKey photo protection</h1>
<p>Upload a photo with a face. The tool adds a filter that is hard to see but leads face-recognition
systems to mismatch the face, and gives you the protected photo to download.</p>
<form id="form"><input type="file" id="file" accept="image/*" required>
<button type="submit" id="submit">Protect</button></form>
<p><progress id="progress" max="100" value="0"></progress> <span id="status">choose a photo</span></p>
<div id="error" role="alert"></div>
<p id="result" hidden><a id="download" download="protected.png">Download the protected photo</a><br>
<img id="preview" alt="protected photo"></p>
<script>
const $ = id => document.getElementById(id);
function fail(msg) { $("error").textContent = msg; $("status").textContent = "failed"; $("submit").disabled = false; }
function poll(job) {
  fetch("api/jobs/" + job).then(r => r.json()).then(s => {
    if (s.state === "error") return fail(s.error);
    const pct = 10 + Math.round(90 * s.done / Math.max(1, s.total));
    $("progress").value = pct;
    $("status").textContent = s.state === "done" ? "done" : "filtering: step " + s.done + " of " + s.total;
    if (s.state === "done") {
      const url = "api/jobs/" + job + "/result";
      $("download").href = url; $("preview").src = url; $("result").hidden = false; $("submit").disabled = false;
    } else setTimeout(() => poll(job), 300);
  }).catch(e => fail("lost contact with the server: " + e));
}
$("form").addEventListener("submit", ev => {
  ev.preventDefault();
  const f = $("file").files[0];
  if (!f) return fail("choose a photo first");
  $("error").textContent = ""; $("result").hidden = true; $("submit").disabled = true;
  $("status").textContent = "uploading"; $("progress").value = 0;
  const xhr = new XMLHttpRequest();
  xhr.open("POST", "api/protect");
  xhr.upload.onprogress = e => { if (e.lengthComputable) $("progress").value = Math.round(10 * e.loaded / e.total); };
  xhr.onload = () => {
    let body = {};
    try { body = JSON.parse(xhr.responseText); } catch (e) { body = {error: xhr.statusText}; }
    if (xhr.status !== 202) return fail(body.error || ("error " + xhr.status));
    $("status").textContent = "filtering"; poll(body.job);
  };
  xhr.onerror = () => fail("upload failed (connection closed; is the file too large?)");
  xhr.send(f);
});
</script></body></html>
"""


class _Jobs:
    """Running and finished jobs (the newest `keep`), safe across handler threads."""

    def __init__(self, keep: int = 16):
        self.keep, self.lock, self.items = keep, threading.Lock(), {}

    def new(self) -> str:
        job = uuid.uuid4().hex
        with self.lock:
            self.items[job] = {"state": "running", "done": 0, "total": 1, "error": None, "png": None}
            for old in list(self.items)[: -self.keep]:
                del self.items[old]
        return job

    def update(self, job: str, **kw) -> None:
        with self.lock:
            if job in self.items:
                self.items[job].update(kw)

    def get(self, job: str) -> dict | None:
        with self.lock:
            j = self.items.get(job)
            return dict(j) if j else None


def make_server(protector: Protector, host: str = "127.0.0.1", port: int = 8765) -> ThreadingHTTPServer:
    """A ready (not yet serving) HTTP server for the tool; `port=0` picks a free port."""
    jobs = _Jobs()

    def run(job: str, img, theta):
        try:
            png = protector.protect(img, theta, progress=lambda k, n: jobs.update(job, done=k, total=n))
            jobs.update(job, state="done", png=png)
        except Exception as e:  # noqa: BLE001 - reported to the page, the server keeps running
            jobs.update(job, state="error", error=f"filtering failed: {e}")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt, *args):  # quiet: the caller's logging decides
            pass

        def _send(self, status: int, body: bytes, ctype: str, extra: dict | None = None):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, obj: dict):
            self._send(status, json.dumps(obj).encode(), "application/json")

        def do_GET(self):
            parts = self.path.split("?")[0].strip("/").split("/")
            if parts == [""]:
                return self._send(200, PAGE.encode(), "text/html; charset=utf-8")
            if len(parts) >= 3 and parts[:2] == ["api", "jobs"]:
                job = jobs.get(parts[2])
                if job is None:
                    return self._json(404, {"error": "unknown job"})
                if len(parts) == 3:
                    return self._json(200, {k: job[k] for k in ("state", "done", "total", "error")})
                if parts[3:] == ["result"] and job["png"] is not None:
                    return self._send(
                        200, job["png"], "image/png", {"Content-Disposition": 'attachment; filename="protected.png"'}
                    )
                return self._json(409, {"error": "result not ready"})
            self._json(404, {"error": f"no such page: {self.path}"})

        def do_POST(self):
            if self.path.split("?")[0].strip("/") != "api/protect":
                return self._json(404, {"error": f"no such endpoint: {self.path}"})
            size = int(self.headers.get("Content-Length") or 0)
            if size > protector.web.max_bytes:
                self.close_connection = True
                return self._json(
                    HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                    {"error": f"file too large: {size} bytes (limit {protector.web.max_bytes})"},
                )
            try:
                img, theta = protector.decode(self.rfile.read(size))
            except UploadError as e:
                return self._json(e.status, {"error": str(e)})
            job = jobs.new()
            threading.Thread(target=run, args=(job, img, theta), daemon=True).start()
            self._json(202, {"job": job})

    return ThreadingHTTPServer((host, port), Handler)


def serve(
    host: str = "127.0.0.1",
    port: int = 8765,
    ensemble: str | Path = "models/lowkey/ensemble.pt",
    attack: LowKeyAttack | None = None,
    web: LowKeyWeb | None = None,
    min_face_size: int = 20,
) -> None:
    """Serve the tool until interrupted, with the ensemble trained by the `lowkey` flow."""
    from tenfold.studies.lowkey.train import load_ensemble

    models, crop = load_ensemble(ensemble)
    server = make_server(
        Protector(models, crop, attack or LowKeyAttack(), web or LowKeyWeb(), min_face_size), host, port
    )
    print(f"LowKey web tool on http://{host}:{server.server_address[1]}/ (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
