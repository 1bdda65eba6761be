"""The LowKey web tool: a page where a person uploads a photo and downloads the protected one.

Standard library only (`http.server`). Flow of one request:
  POST /api/protect (raw image bytes)  -> 413 if larger than `max_bytes` (refused before the body is read),
                                          400 if empty or not an image, 422 if no face is detected,
                                          else 202 {"job": id, "faces": n, "width": w, "height": h}
  GET  /api/jobs/<id>                  -> {"state": running|done|error, "done": k, "total": n, "error": ...}
  GET  /api/jobs/<id>/result           -> the protected PNG as an attachment
Photos of any size are accepted; the longer side is downscaled to `max_side` first. Every detected face (up to
`max_faces`, the most confident) is protected in one run of the filter, at full resolution. The ensemble is the
study's attack ensemble (`lowkey.models.attack`: the MS1M MobileFaceNet and the surrogates trained by stage
`lowkey_surrogates`), loaded with its checksums checked before the server starts. Nothing is written to disk:
jobs and results live in memory. One photo is filtered at a time (a lock): the CPU is the bottleneck.
"""

from __future__ import annotations

import io
import json
import threading
import uuid
import warnings
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from tenfold.studies.lowkey.attack import LowKey
from tenfold.studies.lowkey.params import LowKeyAttack, LowKeyWeb
from tenfold.studies.lowkey.pipeline import Detector, to_tensor, to_uint8


class UploadError(ValueError):
    """A bad upload; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


class Protector:
    """Decode, check and filter one photo at full resolution (downscaled to `max_side` if larger)."""

    def __init__(self, models, attack: LowKeyAttack, web: LowKeyWeb, min_face_size: int = 20):
        self.lowkey, self.web = LowKey(models, attack), web
        self.detector = Detector(min_face_size)
        self.lock = threading.Lock()

    def decode(self, data: bytes) -> tuple[np.ndarray, list[np.ndarray]]:
        """Bytes -> (RGB uint8 photo, landmarks of each face to protect); raises UploadError for an oversized or
        empty upload, a non-image, or a photo without a face."""
        from PIL import Image, UnidentifiedImageError

        if len(data) > self.web.max_bytes:
            raise UploadError(f"file too large: {len(data)} bytes (limit {self.web.max_bytes})", 413)
        if not data:
            raise UploadError("empty upload: choose a photo first", 400)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(io.BytesIO(data)) as im:
                    im.draft("RGB", (self.web.max_side, self.web.max_side))  # JPEG: decode at a reduced scale
                    rgb = im.convert("RGB")
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise UploadError(f"image too large to decode: {e}", 413) from None
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
            raise UploadError(f"not an image this tool can read (PNG, JPEG, ...): {e}", 400) from None
        if max(rgb.size) > self.web.max_side:
            rgb.thumbnail((self.web.max_side, self.web.max_side), Image.Resampling.LANCZOS)
        img = np.asarray(rgb, np.uint8)
        if min(img.shape[:2]) < 16:
            raise UploadError(f"image too small ({img.shape[1]}x{img.shape[0]} px) to hold a face", 422)
        faces = self.detector.faces(img[None])[0][: self.web.max_faces]
        if not faces:
            raise UploadError("no face detected in this photo: upload a photo with a clearly visible face", 422)
        return img, [pts for _, pts, _ in faces]

    def protect(self, img: np.ndarray, points: list[np.ndarray], progress=None) -> bytes:
        """The protected photo (every face in `points` filtered) as PNG bytes."""
        from PIL import Image

        with self.lock:
            adv, _ = self.lowkey.protect(
                to_tensor(img[None]), points, owner=[0] * len(points), seed=0, progress=progress
            )
        buf = io.BytesIO()
        Image.fromarray(to_uint8(adv)[0]).save(buf, format="PNG")
        return buf.getvalue()


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>LowKey: protect your photo</title>
<style>body{font-family:sans-serif;max-width:40em;margin:2em auto}#error{color:#b00}img{max-width:18em}</style>
</head><body>
<h1>LowKey photo protection</h1>
<p>Upload a photo with one or more faces (any size; large photos are scaled down). The tool adds a filter
to every face that is hard to see but leads face-recognition systems to mismatch it, and gives you the protected
photo (PNG) to download.</p>
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

    def run(job: str, img, points):
        try:
            png = protector.protect(img, points, progress=lambda k, n: jobs.update(job, done=k, total=n))
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
            try:
                size = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                self.close_connection = True
                return self._json(400, {"error": "bad Content-Length header"})
            if size < 0 or size > protector.web.max_bytes:
                self.close_connection = True
                return self._json(
                    HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                    {"error": f"file too large: {size} bytes (limit {protector.web.max_bytes})"},
                )
            try:
                img, points = protector.decode(self.rfile.read(size))
            except UploadError as e:
                return self._json(e.status, {"error": str(e)})
            job = jobs.new()
            threading.Thread(target=run, args=(job, img, points), daemon=True).start()
            self._json(202, {"job": job, "faces": len(points), "width": int(img.shape[1]), "height": int(img.shape[0])})

    return ThreadingHTTPServer((host, port), Handler)


def load_protector(
    shared_root: str | Path,
    surrogates: str | Path,
    models: list[str],
    attack: LowKeyAttack,
    web: LowKeyWeb,
    min_face_size: int = 20,
) -> Protector:
    """The tool's filter with the study's attack ensemble; a missing, corrupt or mismatched weights file raises
    (`WeightsError`, `DataCorrupt`, `FileNotFoundError`) before anything is served."""
    from tenfold.studies.lowkey.recognizers import recognizers

    return Protector(list(recognizers(models, shared_root, surrogates).values()), attack, web, min_face_size)


def serve(protector: Protector, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Serve the tool until interrupted."""
    server = make_server(protector, host, port)
    print(f"LowKey web tool on http://{host}:{server.server_address[1]}/ (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
