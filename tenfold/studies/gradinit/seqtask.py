"""Generated sequence-to-sequence tasks for the Post-LN Transformer: copy, reverse or sort a token sequence."""

from __future__ import annotations

import torch


def make_batch(task: str, n: int, length: int, vocab: int, gen: torch.Generator):
    """`n` random sequences of `length` tokens from `vocab` and their targets (same length, position-wise)."""
    x = torch.randint(0, vocab, (n, length), generator=gen)
    if task == "copy":
        y = x.clone()
    elif task == "reverse":
        y = x.flip(1)
    elif task == "sort":
        y = x.sort(dim=1).values
    else:
        raise ValueError(f"unknown sequence task {task!r} (copy, reverse, sort)")
    return x, y


def token_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
