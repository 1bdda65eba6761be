"""The LowKey web tool: a page where a person uploads a photo and downloads the protected one.

Standard library only (`http.server`). Flow of one request:
  POST /api/protect (raw image bytes)  -> 413 if larger than `max_bytes` (refused before the body is read),
                                          400 if empty or not an image, 422 if no face is detected,
                                          else 202 {"job": id, "faces": n, "width": w, "height": h}
  GET  /api/jobs/<id>                  -> {"state": running|done|error, "done": k, "total": n, "error": ...}
  GET  /api/jobs/<id>/result           -> the protected PNG as an attachment
  GET  /api/jobs/<id>/original         -> the photo as the filter saw it (after downscaling), PNG
  GET  /api/jobs/<id>/difference       -> |protected - original| magnified x10, PNG
  GET  /api/info                       -> the filter's setting and what the last evaluation measured for it
The 202 answer also carries the face boxes (x0, y0, x1, y1 in the downscaled photo's pixels). The page queues
several photos (one filter at a time), shows each original beside its protected version with the face boxes, a
toggle for the magnified difference, the setting and its measured protection, and a download button; it is
plain HTML controls (keyboard reachable) and fits a narrow window.
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

    def __init__(
        self, models, attack: LowKeyAttack, web: LowKeyWeb, min_face_size: int = 20, evidence: dict | None = None
    ):
        self.lowkey, self.web, self.attack = LowKey(models, attack), web, attack
        self.detector = Detector(min_face_size)
        self.lock = threading.Lock()
        self.evidence = evidence  # what the last evaluation measured at this setting (see `evidence`), or None

    def info(self) -> dict:
        """The setting the page shows beside every result, with the measured protection when known."""
        a = self.attack
        return {"setting": {"steps": a.n_iters, "step_size": a.lr, "c_sim": a.c_sim}, "evidence": self.evidence}

    def decode(self, data: bytes) -> tuple[np.ndarray, list[np.ndarray], list[list[int]]]:
        """Bytes -> (RGB uint8 photo, landmarks of each face to protect, each face's box); raises UploadError for
        an oversized or empty upload, a non-image, or a photo without a face."""
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
        h, w = img.shape[:2]  # boxes clipped to the photo (MTCNN may reach past its edge)
        boxes = [
            [int(round(min(max(float(v), 0.0), lim))) for v, lim in zip(box[:4], (w, h, w, h))] for box, _, _ in faces
        ]
        return img, [pts for _, pts, _ in faces], boxes

    def protect(self, img: np.ndarray, points: list[np.ndarray], progress=None) -> np.ndarray:
        """The protected photo (every face in `points` filtered), RGB uint8."""
        with self.lock:
            adv, _ = self.lowkey.protect(
                to_tensor(img[None]), points, owner=[0] * len(points), seed=0, progress=progress
            )
        return to_uint8(adv)[0]


def png(img: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def difference(original: np.ndarray, protected: np.ndarray, gain: float = 10.0) -> np.ndarray:
    """|protected - original| per pixel, magnified `gain` times (clipped), so the filter becomes visible."""
    d = np.abs(protected.astype(np.int16) - original.astype(np.int16)).astype(np.float32) * gain
    return np.clip(d, 0, 255).astype(np.uint8)


def evidence(results_path: str | Path, attack: LowKeyAttack) -> dict | None:
    """What the study's last evaluation (results/lowkey.json) measured at the first operating point, when that
    point is the tool's setting (same steps); None when there is no evaluation or it used another setting."""
    path = Path(results_path)
    if not path.exists():
        return None
    r = json.loads(path.read_text())
    claims, details = {c["id"]: c for c in r.get("claims", [])}, r.get("details", {})
    evaluated = details.get("attack", {})
    same = details.get("first_iters") == attack.n_iters and all(
        evaluated.get(k) == v for k, v in attack.model_dump().items() if k not in ("n_iters", "batch_size")
    )
    if not same or "dlib_rank1_filtered" not in claims or "lowkey_ssim" not in claims:
        return None
    return {
        "dlib_rank1": claims["dlib_rank1_filtered"]["measured"],
        "face_ssim": claims["lowkey_ssim"]["measured"],
        "heldout_rank1": claims.get("surrogate_rank1_filtered", {}).get("measured"),
        "run": r.get("run", {}).get("mlflow_run_id"),
    }


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>LowKey: protect your photos</title>
<style>
body{font-family:sans-serif;max-width:60em;margin:1em auto;padding:0 1em;line-height:1.4}
#error{color:#b00}.item{border:1px solid #ccc;border-radius:6px;padding:.6em;margin:.8em 0}
.pair{display:flex;flex-wrap:wrap;gap:.8em}.pair figure{margin:0;flex:1 1 14em;max-width:100%}
.frame{position:relative;display:inline-block;max-width:100%}.frame img{display:block;max-width:100%;height:auto}
.box{position:absolute;border:2px solid #0a0;box-sizing:border-box;pointer-events:none}
button,a.button,input{font-size:1em;padding:.3em .7em}a.button{border:1px solid #333;border-radius:4px;
text-decoration:none;color:#000;background:#eee;display:inline-block}
:focus-visible{outline:3px solid #36c;outline-offset:2px}progress{width:12em;max-width:100%}
.measured{background:#f4f4f4;padding:.4em .6em;border-radius:4px}
</style></head><body>
<h1>LowKey photo protection</h1>
<p>Upload one or more photos with faces (any size; large photos are scaled down). The tool adds a filter to every
face that is hard to see but leads face-recognition systems to mismatch it. Each photo appears beside its
protected version, with the faces found; download the protected PNG.</p>
<p id="setting" class="measured" aria-live="polite">loading the filter's setting...</p>
<form id="form"><label for="file">Photos:</label>
<input type="file" id="file" accept="image/*" multiple required>
<button type="submit" id="submit">Protect</button></form>
<div id="error" role="alert"></div>
<div id="queue" aria-live="polite"></div>
<script>
const $ = id => document.getElementById(id);
const el = (tag, props, ...kids) => { const e = Object.assign(document.createElement(tag), props || {});
  kids.forEach(k => e.append(k)); return e; };
fetch("api/info").then(r => r.json()).then(info => {
  const s = info.setting, ev = info.evidence;
  let text = "Setting: " + s.steps + " filter steps of " + s.step_size + ", SSIM penalty " + s.c_sim + ". ";
  text += ev ? "In the last evaluation at this setting, dlib matched " + Math.round(100 * ev.dlib_rank1) +
    "% of protected test photos at rank 1 (face-region SSIM " + ev.face_ssim.toFixed(3) + ")" +
    (ev.heldout_rank1 == null ? "." : ", a held-out recognizer " + Math.round(100 * ev.heldout_rank1) + "%.")
    : "No evaluation of this setting yet (run `dvc repro lowkey`).";
  $("setting").textContent = text;
}).catch(() => { $("setting").textContent = "setting unavailable"; });
let busy = Promise.resolve(), count = 0;
function card(file) {
  const n = ++count, status = el("span", {className: "status", textContent: "waiting"});
  const prog = el("progress", {max: 100, value: 0});
  const err = el("div", {className: "error", role: "alert"});
  const item = el("section", {className: "item", id: "item" + n},
    el("h2", {textContent: file.name}), el("p", {}, prog, " ", status), err);
  $("queue").append(item);
  return {item, status, prog, err, n};
}
function fail(c, msg) { c.err.textContent = msg; c.status.textContent = "failed"; $("error").textContent = msg; }
function upload(file, c) {
  return new Promise(done => {
    c.status.textContent = "uploading";
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "api/protect");
    xhr.upload.onprogress = e => { if (e.lengthComputable) c.prog.value = Math.round(10 * e.loaded / e.total); };
    xhr.onload = () => {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch (e) { body = {error: xhr.statusText}; }
      if (xhr.status !== 202) { fail(c, body.error || ("error " + xhr.status)); return done(); }
      c.status.textContent = "filtering"; poll(body, c, done);
    };
    xhr.onerror = () => { fail(c, "upload failed (connection closed; is the file too large?)"); done(); };
    xhr.send(file);
  });
}
function poll(job, c, done) {
  fetch("api/jobs/" + job.job).then(r => r.json()).then(s => {
    if (s.state === "error") { fail(c, s.error); return done(); }
    c.prog.value = 10 + Math.round(90 * s.done / Math.max(1, s.total));
    c.status.textContent = s.state === "done" ? "done" : "filtering: step " + s.done + " of " + s.total;
    if (s.state === "done") { show(job, c); done(); } else setTimeout(() => poll(job, c, done), 300);
  }).catch(e => { fail(c, "lost contact with the server: " + e); done(); });
}
function show(job, c) {
  const base = "api/jobs/" + job.job + "/";
  const frame = el("div", {className: "frame"}, el("img", {src: base + "original", alt: "original photo",
    className: "original", width: job.width, height: job.height}));
  job.boxes.forEach(b => frame.append(el("div", {className: "box", style: "left:" + 100 * b[0] / job.width +
    "%;top:" + 100 * b[1] / job.height + "%;width:" + 100 * (b[2] - b[0]) / job.width + "%;height:" +
    100 * (b[3] - b[1]) / job.height + "%"})));
  const prot = el("img", {src: base + "result", alt: "protected photo", className: "protected",
    width: job.width, height: job.height});
  const cap = el("figcaption", {textContent: "protected"});
  const toggle = el("button", {type: "button", className: "toggle", textContent: "Show the difference (x10)"});
  toggle.setAttribute("aria-pressed", "false");
  toggle.onclick = () => { const on = toggle.getAttribute("aria-pressed") !== "true";
    toggle.setAttribute("aria-pressed", String(on)); prot.src = base + (on ? "difference" : "result");
    prot.alt = on ? "difference, magnified ten times" : "protected photo";
    cap.textContent = on ? "difference x10" : "protected";
    toggle.textContent = on ? "Show the protected photo" : "Show the difference (x10)"; };
  const dl = el("a", {className: "button download", href: base + "result", textContent: "Download protected PNG"});
  dl.download = c.item.querySelector("h2").textContent.replace(/\\.[^.]*$/, "") + "-protected.png";
  c.item.append(el("p", {className: "faces", textContent: job.faces + (job.faces === 1 ? " face" : " faces") +
    " found and protected (green boxes)"}),
    el("div", {className: "pair"}, el("figure", {}, frame, el("figcaption", {textContent: "original"})),
      el("figure", {}, prot, cap)), el("p", {}, toggle, " ", dl));
}
$("form").addEventListener("submit", ev => {
  ev.preventDefault();
  const files = Array.from($("file").files);
  if (!files.length) { $("error").textContent = "choose a photo first"; return; }
  $("error").textContent = "";
  files.forEach(f => { const c = card(f); busy = busy.then(() => upload(f, c)); });
  $("file").value = "";
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
            self.items[job] = {"state": "running", "done": 0, "total": 1, "error": None, "images": None}
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
            adv = protector.protect(img, points, progress=lambda k, n: jobs.update(job, done=k, total=n))
            images = {"result": png(adv), "original": png(img), "difference": png(difference(img, adv))}
            jobs.update(job, state="done", images=images)
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
            if parts == ["api", "info"]:
                return self._json(200, protector.info())
            if len(parts) >= 3 and parts[:2] == ["api", "jobs"]:
                job = jobs.get(parts[2])
                if job is None:
                    return self._json(404, {"error": "unknown job"})
                if len(parts) == 3:
                    return self._json(200, {k: job[k] for k in ("state", "done", "total", "error")})
                kind = parts[3] if len(parts) == 4 else None
                if kind in ("result", "original", "difference") and job["images"] is not None:
                    extra = {"Content-Disposition": 'attachment; filename="protected.png"'} if kind == "result" else {}
                    return self._send(200, job["images"][kind], "image/png", extra)
                return self._json(409 if kind in ("result", "original", "difference") else 404, {"error": "not ready"})
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
                img, points, boxes = protector.decode(self.rfile.read(size))
            except UploadError as e:
                return self._json(e.status, {"error": str(e)})
            job = jobs.new()
            threading.Thread(target=run, args=(job, img, points), daemon=True).start()
            h, w = img.shape[:2]
            self._json(202, {"job": job, "faces": len(points), "width": int(w), "height": int(h), "boxes": boxes})

    return ThreadingHTTPServer((host, port), Handler)


def load_protector(
    shared_root: str | Path,
    surrogates: str | Path,
    models: list[str],
    attack: LowKeyAttack,
    web: LowKeyWeb,
    min_face_size: int = 20,
    results: str | Path | None = None,
) -> Protector:
    """The tool's filter with the study's attack ensemble; a missing, corrupt or mismatched weights file raises
    (`WeightsError`, `DataCorrupt`, `FileNotFoundError`) before anything is served. `results`: the study's
    results/lowkey.json, for the protection measured at this setting (shown on the page)."""
    from tenfold.studies.lowkey.recognizers import recognizers

    found = evidence(results, attack) if results else None
    return Protector(list(recognizers(models, shared_root, surrogates).values()), attack, web, min_face_size, found)


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
