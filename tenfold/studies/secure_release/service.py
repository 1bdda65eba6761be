"""Online release: a fixed surrogate and a precomputed target gradient protect items as they are released.

    svc = ReleaseService(surrogate, g_t, eps=8/255, steps=30, step_size=0.8/255)
    x_protected = svc.protect(x, y)            # one item or a small batch, any time
    svc.save("service.pt"); ReleaseService.load("service.pt")
    protect_folder(svc, "incoming/", "released/")   # files -> protected files, atomically, never in place

Folder layout: `<in>/<label>/<name>.png|pgm|jpg` (the label is the sub-folder name: an integer class, or a class
name the service knows, e.g. `airplane` for CIFAR-10) or files listed with their label in `<in>/labels.csv`
(`file,label`). Images must have the surrogate's shape (e.g. 32x32 RGB for the CIFAR-10 service, 28x28 grey for
digits). Outputs mirror the input tree under `<out>` as PNG, plus `<out>/labels.csv`, the label manifest a user of
the released data needs (integer labels).
"""

from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from tenfold.core.runtime import atomic_torch_save, atomic_write_bytes, atomic_write_text
from tenfold.core.seeds import seed_for
from tenfold.studies.secure_release.nets import build_net
from tenfold.studies.secure_release.poison import craft

IMAGE_EXTS = (".png", ".pgm", ".jpg", ".jpeg", ".bmp")


class ReleaseError(ValueError):
    """Bad input to the release service (missing label, wrong image size, unsafe output folder)."""


@dataclass
class ReleaseService:
    """Protects items one at a time or in small batches with a fixed surrogate (alignment poisoning)."""

    model: torch.nn.Module
    g_t: list[torch.Tensor]
    eps: float
    steps: int
    step_size: float
    augment: bool = True
    num_classes: int = 10
    arch: str = "cnn"
    shape: tuple[int, int, int] = (1, 28, 28)
    seed: int = 0
    flip: bool = False
    mean: list[float] | None = None  # the surrogate's input normalisation (build_net), saved with the service
    std: list[float] | None = None
    classes: list[str] | None = None  # class names: folders named by class are accepted by protect_folder
    calls: int = 0
    protected: int = 0
    seconds: float = 0.0
    meta: dict = field(default_factory=dict)

    def protect(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Protect a batch (N, C, H, W) in [0, 1] with labels y; deterministic given the service seed and the
        number of earlier calls (each call's draws get their own seed from both)."""
        if tuple(x.shape[1:]) != tuple(self.shape):
            raise ReleaseError(f"images must have shape {self.shape}, got {tuple(x.shape[1:])}")
        if int(y.min()) < 0 or int(y.max()) >= self.num_classes:
            raise ReleaseError(f"labels must be in 0..{self.num_classes - 1}")
        t0 = time.perf_counter()
        dev = next(self.model.parameters()).device
        out = craft(
            "alignment",
            self.model,
            x.to(dev),
            y.to(dev),
            self.eps,
            self.steps,
            self.step_size,
            augment=self.augment,
            batch_size=len(x),
            num_classes=self.num_classes,
            g_t=self.g_t,
            seed=seed_for(self.seed, "secure_release", "protect", self.calls),
            flip=self.flip,
        )
        self.calls += 1
        self.protected += len(x)
        self.seconds += time.perf_counter() - t0
        return out

    def protect_stream(self, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> torch.Tensor:
        """Release `x` item by item in arrival order, `batch_size` items per call (online release)."""
        return torch.cat(
            [self.protect(x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, len(x), batch_size)]
        )

    @property
    def images_per_second(self) -> float:
        return self.protected / self.seconds if self.seconds else float("nan")

    def save(self, path: str | Path) -> Path:
        return atomic_torch_save(
            path,
            {
                "arch": self.arch,
                "shape": list(self.shape),
                "num_classes": self.num_classes,
                "state_dict": self.model.state_dict(),
                "g_t": self.g_t,
                "eps": self.eps,
                "steps": self.steps,
                "step_size": self.step_size,
                "augment": self.augment,
                "seed": self.seed,
                "flip": self.flip,
                "mean": self.mean,
                "std": self.std,
                "classes": self.classes,
            },
        )

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> ReleaseService:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no release service (run the secure_release study first)")
        s = torch.load(path, map_location=device, weights_only=True)
        shape = tuple(s["shape"])
        model = build_net(s["arch"], shape, s["num_classes"], s.get("mean"), s.get("std"))
        model.load_state_dict(s["state_dict"])
        model.to(device).eval()
        return cls(
            model,
            [g.to(device) for g in s["g_t"]],
            s["eps"],
            s["steps"],
            s["step_size"],
            s["augment"],
            s["num_classes"],
            s["arch"],
            shape,
            s["seed"],
            s.get("flip", False),
            s.get("mean"),
            s.get("std"),
            s.get("classes"),
        )


def _read_image(path: Path, shape: tuple[int, int, int]) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            arr = np.asarray(im.convert("L" if shape[0] == 1 else "RGB"), dtype=np.float32) / 255.0
    except Exception as e:
        raise ReleaseError(f"{path}: unreadable image ({e})") from None
    arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
    if arr.shape != tuple(shape):
        raise ReleaseError(f"{path}: image shape {arr.shape} does not match the surrogate's {tuple(shape)}")
    return arr


def _png_bytes(img: np.ndarray) -> bytes:
    from PIL import Image

    a = np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)
    im = Image.fromarray(a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def _label(name: str, classes: list[str] | None) -> int:
    if classes and name in classes:
        return classes.index(name)
    return int(name)


def list_items(in_dir: str | Path, classes: list[str] | None = None) -> list[tuple[Path, int]]:
    """(file, label) for every image under `in_dir`, from labels.csv if present, else from folder names (an
    integer, or one of `classes`)."""
    in_dir = Path(in_dir)
    if not in_dir.is_dir():
        raise FileNotFoundError(f"{in_dir}: input folder not found")
    manifest = in_dir / "labels.csv"
    if manifest.exists():
        with open(manifest, newline="") as f:
            rows = list(csv.DictReader(f))
        if rows and not {"file", "label"} <= set(rows[0]):
            raise ReleaseError(f"{manifest}: needs the columns file,label")
        try:
            return [(in_dir / r["file"], _label(r["label"], classes)) for r in rows]
        except ValueError as e:
            raise ReleaseError(f"{manifest}: a label is neither an integer nor a class name ({e})") from None
    items = []
    for p in sorted(in_dir.rglob("*")):
        if p.suffix.lower() in IMAGE_EXTS and p.is_file():
            try:
                items.append((p, _label(p.parent.name, classes)))
            except ValueError:
                names = f" or one of {', '.join(classes)}" if classes else ""
                raise ReleaseError(
                    f"{p}: no label (put it in a folder named by its class: an integer{names}; or "
                    f"add {manifest.name} with columns file,label)"
                ) from None
    return items


def output_path(in_dir: Path, out_dir: Path, src: Path) -> Path:
    return (out_dir / src.relative_to(in_dir)).with_suffix(".png")


def protect_folder(svc: ReleaseService, in_dir: str | Path, out_dir: str | Path, batch_size: int = 32) -> dict:
    """Protect every image of `in_dir` that has no output yet; write each output atomically under `out_dir`.

    Originals are never touched: `out_dir` must not be `in_dir` or inside it, and an existing output is kept
    (so a re-run or a watcher only processes new files). Returns counts and throughput."""
    in_dir, out_dir = Path(in_dir).resolve(), Path(out_dir).resolve()
    if out_dir == in_dir or in_dir in out_dir.parents:
        raise ReleaseError(f"{out_dir}: the output folder must be outside the input folder {in_dir}")
    items = list_items(in_dir, svc.classes)
    todo = [(p, y) for p, y in items if not output_path(in_dir, out_dir, p).exists()]
    t0, done = time.perf_counter(), 0
    for i in range(0, len(todo), batch_size):
        chunk = todo[i : i + batch_size]
        x = torch.from_numpy(np.stack([_read_image(p, svc.shape) for p, _ in chunk]))
        y = torch.tensor([lab for _, lab in chunk], dtype=torch.int64)
        out = svc.protect(x, y).cpu().numpy()
        for (p, _), img in zip(chunk, out):
            atomic_write_bytes(output_path(in_dir, out_dir, p), _png_bytes(img))
        done += len(chunk)
    rows = sorted(
        f"{output_path(in_dir, out_dir, p).relative_to(out_dir).as_posix()},{y}"
        for p, y in items
        if output_path(in_dir, out_dir, p).exists()
    )
    atomic_write_text(out_dir / "labels.csv", "file,label\n" + "".join(r + "\n" for r in rows))
    secs = time.perf_counter() - t0
    return {
        "protected": done,
        "skipped": len(items) - len(todo),
        "seconds": secs,
        "images_per_second": done / secs if done and secs else None,
    }
