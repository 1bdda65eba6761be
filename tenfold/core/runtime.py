"""Device and threads, atomic file writes, file hashes and fingerprints shared by every study."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch


def pick_device(preference: str = "auto") -> torch.device:
    """`auto` picks CUDA when present, else CPU; `cuda` without a GPU is a clear error."""
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if preference == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("common.device is 'cuda' but no CUDA device is available; use 'auto' or 'cpu'")
    return torch.device(preference)


def configure_threads(n: int | None) -> None:
    if n:
        torch.set_num_threads(int(n))


def channels_last(model: torch.nn.Module) -> torch.nn.Module:
    """Store the 4-D weights and buffers of a model with 2-D convolutions in channels-last (NHWC) layout, in place;
    a model without one is returned unchanged. The first convolution then produces channels-last activations and
    oneDNN skips the reorder around every convolution: training steps of the studies' conv nets run 1.05-1.4x
    faster on a CPU (`python -m benchmarks.bench_layout`). Outputs equal the default layout's up to float rounding
    (another summation order), so a run is bit-reproducible in either layout, not across the two."""
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    if convs and not any(_nhwc_crashes(c) for c in convs):
        model.to(memory_format=torch.channels_last)
    return model


def _nhwc_crashes(conv: torch.nn.Conv2d) -> bool:
    """A strided 1x1 convolution on fewer than 8 input channels corrupts the heap in its channels-last backward
    (torch 2.14.1 on an AVX2 CPU, AMD Zen 3: `free(): invalid pointer` or a segfault; 8 and more channels, 3x3 kernels
    and AVX-512 hosts ran fine), as in a width-4 ResNet's shortcut. Such a model stays in the default layout."""
    return conv.kernel_size == (1, 1) and max(conv.stride) > 1 and conv.in_channels < 8


# ---------------------------------------------------------------- atomic writes
def atomic_write_with(path: str | os.PathLike, writer: Callable[[str], None]) -> Path:
    """Call `writer(tmp_path)` on a temporary file beside `path`, then rename it over `path` (atomic)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would make every output private
    try:
        writer(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_bytes(path, data: bytes) -> Path:
    def w(tmp):
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    return atomic_write_with(path, w)


def atomic_write_text(path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def _json_default(o: Any):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, (np.bool_,)):
        return bool(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def atomic_write_json(path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def atomic_torch_save(path, obj: Any) -> Path:
    """torch.save through a file object: given a path, torch names the zip's inner folder after the (random)
    temporary file, so equal weights got a new md5 on every run and DVC reran every stage downstream of a model.
    Through a file object the inner folder is `archive/` and equal objects give equal bytes."""

    def w(tmp):
        with open(tmp, "wb") as f:
            torch.save(obj, f)

    return atomic_write_with(path, w)


def atomic_savez(path, compress: bool = True, **arrays) -> Path:
    """.npz (deflated unless `compress=False`), byte-for-byte reproducible (fixed zip timestamps), so equal data
    has an equal md5 and DVC sees an unchanged output."""
    import zipfile

    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED

    def w(tmp):
        with zipfile.ZipFile(tmp, "w", compression=method) as zf:
            for name, arr in arrays.items():
                info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = method
                with zf.open(info, "w", force_zip64=True) as f:
                    np.lib.format.write_array(f, np.asanyarray(arr), allow_pickle=False)

    return atomic_write_with(path, w)


def atomic_savefig(fig, path, **kw) -> Path:
    path = Path(path)
    return atomic_write_with(path, lambda tmp: fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", **kw))


def md5_file(path, chunk: int = 1 << 20) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def fingerprint(*parts: Any) -> str:
    """Stable short hash of JSON-able parts (configs, data md5s, seeds): decides whether a checkpoint matches."""
    blob = json.dumps(parts, sort_keys=True, default=_json_default)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cpu_identity(cpuinfo: str | None = None) -> dict[str, str]:
    """The CPU precisely enough to tell two hosts apart: the model name alone ("AMD EPYC") named both a Zen 3 host
    (AVX2) and an earlier one (AVX-512) that ran the same code twice as fast with other floats (2026-12-02).
    `cpuinfo`: the text of /proc/cpuinfo (read when None; "?" for what it does not say)."""
    import re

    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""

    def field(name: str) -> str:
        m = re.search(rf"^{name}\s*:\s*(.*)$", cpuinfo, re.M)
        return m.group(1).strip() if m else "?"

    flags = set(field("flags").split())
    return {
        "name": field("model name"),
        "family": field("cpu family"),
        "model": field("model"),
        "stepping": field("stepping"),
        "vector": "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2",
    }


def describe_host(cpuinfo: str | None = None, capability: str | None = None) -> str:
    """One line naming this host's CPU for tables and spread files, e.g. "AMD EPYC (family 25, model 1, stepping 1;
    AVX2; torch CPU capability AVX2; 2 cores)". `capability`: torch's CPU capability (asked when None)."""
    c = cpu_identity(cpuinfo)
    if capability is None:
        capability = str(torch.backends.cpu.get_cpu_capability())
    return (
        f"{c['name']} (family {c['family']}, model {c['model']}, stepping {c['stepping']}; {c['vector']}; "
        f"torch CPU capability {capability}; {os.cpu_count()} cores)"
    )


def machine_info() -> dict[str, str]:
    """What a floating-point difference between two runs can be traced to: CPU model name, family, model, stepping
    and vector width, core and thread counts, torch, its BLAS and CPU capability. Logged as tags on every MLflow run."""
    import platform
    import re

    c = cpu_identity()
    cfg = torch.__config__.show()
    blas = re.search(r"BLAS_INFO=(\w+)", cfg)
    return {
        "machine.cpu": c["name"] if c["name"] != "?" else platform.processor() or "unknown",
        "machine.cpu_family": c["family"],
        "machine.cpu_model": c["model"],
        "machine.cpu_stepping": c["stepping"],
        "machine.cpu_vector": c["vector"],
        "machine.cores": str(os.cpu_count()),
        "machine.torch_threads": str(torch.get_num_threads()),
        "machine.torch": torch.__version__,
        "machine.blas": blas.group(1) if blas else "unknown",
        "machine.cpu_capability": str(torch.backends.cpu.get_cpu_capability()),
        "machine.cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
    }
