"""Training a surrogate face model: aligned crops (alignment jittered), margin-head softmax, AdamW, cosine lr."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from tenfold.core.checkpoints import Checkpoint
from tenfold.core.runtime import atomic_torch_save
from tenfold.core.seeds import generator, seed_for, seeded
from tenfold.studies.lowkey.models import FaceNet, MarginHead
from tenfold.studies.lowkey.params import LowKeyTrain, Surrogate
from tenfold.studies.lowkey.pipeline import warp


def _jitter(theta: torch.Tensor, amount: float, gen: torch.Generator) -> torch.Tensor:
    """Random scale and shift of the alignment (augmentation that also mimics detector noise)."""
    b = theta.shape[0]
    scale = 1 + amount * (2 * torch.rand(b, 1, 1, generator=gen) - 1)
    shift = amount * (2 * torch.rand(b, 2, generator=gen) - 1)
    out = theta.clone()
    out[:, :, :2] = out[:, :, :2] * scale
    out[:, :, 2] = out[:, :, 2] + shift
    return out


def train_surrogate(
    spec: Surrogate,
    images: torch.Tensor,
    thetas: torch.Tensor,
    labels: torch.Tensor,
    crop: int,
    cfg: LowKeyTrain,
    seed: int,
    device="cpu",
    checkpoint: Checkpoint | None = None,
    on_epoch: Callable[[dict], None] | None = None,
):
    """Train one surrogate on full images (B, 3, H, W) with their alignment thetas; returns (model, history).

    `seed` is this surrogate's seed: the backbone's and the head's initial weights and the generator of every
    training draw (shuffles, alignment jitter, flips, dropout masks) get their own seeds from it (`seed_for`).

    With a `checkpoint` (`tenfold.core.checkpoints.Checkpoint`, fingerprinted by params, data and seed), each
    epoch is saved atomically with the optimiser, schedule and generator states, so a killed run resumes to the
    same weights and a finished one is loaded instead of retrained.
    """
    classes = int(labels.max()) + 1
    model = seeded(
        seed_for(seed, "lowkey", "backbone"), lambda: FaceNet(spec.backbone, crop, cfg.embedding_dim, cfg.width)
    )
    margin = cfg.arcface_margin if spec.head == "arcface" else cfg.cosface_margin
    head = seeded(
        seed_for(seed, "lowkey", "head"), lambda: MarginHead(spec.head, cfg.embedding_dim, classes, cfg.scale, margin)
    )
    params = list(model.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = -(-len(labels) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=cfg.epochs * steps_per_epoch, pct_start=0.15)
    start, history = 0, []
    gen = generator(seed_for(seed, "lowkey", "batches"))  # shuffles, jitter, flips and dropout masks
    state = checkpoint.load() if checkpoint else None
    if state is not None:
        model.load_state_dict(state["model"])
        head.load_state_dict(state["head"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        gen.set_state(state["gen"])
        start, history = state["epoch"], state["history"]
    model.to(device)
    head.to(device)
    model.seed_dropout(gen)
    for epoch in range(start, cfg.epochs):
        model.train()
        head.train()
        perm = torch.randperm(len(labels), generator=gen)
        total, correct, n = 0.0, 0, 0
        for i in range(0, len(perm), cfg.batch_size):
            idx = perm[i : i + cfg.batch_size]
            th = _jitter(thetas[idx], cfg.jitter, gen)
            x = warp(images[idx], th, crop)
            flip = torch.rand(len(idx), generator=gen) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(-1), x).to(device)
            y = labels[idx].to(device)
            logits = head(model(x), y)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
            correct += int((logits.argmax(1) == y).sum())
            n += len(idx)
        rec = {"epoch": epoch + 1, "loss": total / n, "train_acc": correct / n}
        history.append(rec)
        if checkpoint:
            checkpoint.save(
                model=model.state_dict(),
                head=head.state_dict(),
                opt=opt.state_dict(),
                sched=sched.state_dict(),
                gen=gen.get_state(),
                epoch=epoch + 1,
                history=history,
            )
        if on_epoch:
            on_epoch(rec)
    model.seed_dropout(None)
    return model.cpu().eval(), history


@torch.no_grad()
def embed(model: torch.nn.Module, crops: torch.Tensor, batch: int = 256) -> np.ndarray:
    """Embeddings of aligned crops (B, 3, S, S) in eval mode."""
    model.eval()
    return torch.cat([model(crops[i : i + batch]) for i in range(0, len(crops), batch)]).numpy()


def save_ensemble(
    path: str | Path, models: dict[str, torch.nn.Module], specs: list[Surrogate], crop: int, cfg: LowKeyTrain
) -> Path:
    """One file holding every surrogate's weights and what is needed to rebuild it (for the web tool)."""
    by_name = {s.name: s for s in specs}
    return atomic_torch_save(
        path,
        {
            "crop": crop,
            "embedding_dim": cfg.embedding_dim,
            "width": cfg.width,
            "surrogates": [
                {"name": n, "backbone": by_name[n].backbone, "head": by_name[n].head, "state": m.state_dict()}
                for n, m in models.items()
            ],
        },
    )


def load_ensemble(path: str | Path) -> tuple[list[torch.nn.Module], int]:
    """Models saved by `save_ensemble` (weights only) and their crop size."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no trained LowKey ensemble; run `tenfold run lowkey` first")
    state = torch.load(path, map_location="cpu", weights_only=True)
    models = []
    for s in state["surrogates"]:
        m = FaceNet(s["backbone"], state["crop"], state["embedding_dim"], state["width"])
        m.load_state_dict(s["state"])
        models.append(m.eval())
    return models, int(state["crop"])
