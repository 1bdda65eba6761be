"""Seeded, vectorized maze generator in the easy-to-hard-data layout.

A maze of size ``s`` (odd) has ``n = (s + 1) / 2`` cells per side. Cells live on a ``(2n+1)^2`` grid (cell (r, c)
at grid (2r+1, 2c+1), walls between), carved by a randomized depth-first backtracker, so the open cells form a
spanning tree: exactly one path joins any two cells. The grid is upsampled by ``scale`` (2 reproduces
easy-to-hard-data exactly) and framed by a 1-pixel wall, giving a side of ``scale*(s+2) + 2`` (``2s+6`` at scale 2).

All mazes of a batch are carved in lockstep with numpy: every backtracker takes exactly ``2n^2 - 1`` steps
(each cell is pushed once and popped once), so a batch is a fixed number of vector operations.

Images are stored as uint8 codes (WALL/OPEN/START/GOAL) with a separate path mask; `to_rgb` turns codes into the
network input (walls black, open white, start green, goal red).
"""

from __future__ import annotations

import numpy as np

WALL, OPEN, START, GOAL = 0, 1, 2, 3
_DR = np.array([-1, 1, 0, 0])
_DC = np.array([0, 0, -1, 1])


def image_side(size: int, scale: int) -> int:
    return scale * (size + 2) + 2


def _check(size: int, scale: int) -> int:
    if size < 3 or size % 2 == 0:
        raise ValueError(f"maze size must be odd and >= 3, got {size}")
    if scale < 1:
        raise ValueError(f"scale must be >= 1, got {scale}")
    return (size + 1) // 2


def carve(count: int, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Carve `count` perfect mazes. Returns (grid codes (B,G,G), path mask (B,G,G), [start, goal] cells (B,2))."""
    n = _check(size, 1)
    N = n * n
    G = 2 * n + 1
    B = int(count)
    ar = np.arange(B)
    grid = np.zeros((B, G, G), dtype=np.uint8)
    visited = np.zeros((B, N), dtype=bool)
    parent = np.full((B, N), -1, dtype=np.int64)
    stack = np.zeros((B, N), dtype=np.int64)
    sp = np.zeros(B, dtype=np.int64)

    start = rng.integers(0, N, size=B)
    # goal: uniform over the other N-1 cells
    goal = rng.integers(0, N - 1, size=B)
    goal = goal + (goal >= start)

    stack[:, 0] = start
    visited[ar, start] = True
    grid[ar, 2 * (start // n) + 1, 2 * (start % n) + 1] = OPEN
    for _ in range(2 * N - 1):
        active = sp >= 0
        if not active.any():
            break
        cur = stack[ar, np.maximum(sp, 0)]
        r, c = cur // n, cur % n
        nr = r[:, None] + _DR[None, :]
        nc = c[:, None] + _DC[None, :]
        inside = (nr >= 0) & (nr < n) & (nc >= 0) & (nc < n)
        nb = np.where(inside, nr * n + nc, 0)
        ok = inside & ~visited[ar[:, None], nb] & active[:, None]
        score = np.where(ok, rng.random((B, 4)), -1.0)
        d = score.argmax(1)
        move = ok[ar, d]
        pop = active & ~move
        # push the chosen neighbour and open the passage to it
        mb = ar[move]
        nxt = nb[mb, d[move]]
        visited[mb, nxt] = True
        parent[mb, nxt] = cur[move]
        sp[mb] += 1
        stack[mb, sp[mb]] = nxt
        gr, gc = 2 * (nxt // n) + 1, 2 * (nxt % n) + 1
        grid[mb, gr, gc] = OPEN
        grid[mb, gr - _DR[d[move]], gc - _DC[d[move]]] = OPEN
        sp[pop] -= 1

    # path: follow parents from the goal back to the root (= start)
    path = np.zeros_like(grid)
    cur = goal.copy()
    path[ar, 2 * (cur // n) + 1, 2 * (cur % n) + 1] = 1
    for _ in range(N):
        walking = cur != start
        if not walking.any():
            break
        w = ar[walking]
        p = parent[w, cur[walking]]
        a_r, a_c = 2 * (cur[walking] // n) + 1, 2 * (cur[walking] % n) + 1
        b_r, b_c = 2 * (p // n) + 1, 2 * (p % n) + 1
        path[w, (a_r + b_r) // 2, (a_c + b_c) // 2] = 1
        path[w, b_r, b_c] = 1
        cur[walking] = p
    grid[ar, 2 * (start // n) + 1, 2 * (start % n) + 1] = START
    grid[ar, 2 * (goal // n) + 1, 2 * (goal % n) + 1] = GOAL
    return grid, path, np.stack([start, goal], 1)


def render(grid: np.ndarray, path: np.ndarray, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """Upsample codes and mask by `scale` and add the 1-pixel wall frame."""
    if scale > 1:
        grid = grid.repeat(scale, axis=-2).repeat(scale, axis=-1)
        path = path.repeat(scale, axis=-2).repeat(scale, axis=-1)
    pad = [(0, 0)] * (grid.ndim - 2) + [(1, 1), (1, 1)]
    return np.pad(grid, pad, constant_values=WALL), np.pad(path, pad, constant_values=0)


def generate(count: int, size: int, scale: int = 2, seed: int = 0, chunk: int = 4096) -> dict[str, np.ndarray]:
    """`count` mazes of `size`, deterministic for (seed, size): codes (B,H,W) uint8 and targets (B,H,W) uint8."""
    _check(size, scale)
    rng = np.random.default_rng([int(seed), int(size)])
    codes, targets = [], []
    for lo in range(0, int(count), chunk):
        g, p, _ = carve(min(chunk, count - lo), size, rng)
        g, p = render(g, p, scale)
        codes.append(g)
        targets.append(p)
    side = image_side(size, scale)
    if not codes:
        return {"codes": np.zeros((0, side, side), np.uint8), "targets": np.zeros((0, side, side), np.uint8)}
    return {"codes": np.concatenate(codes), "targets": np.concatenate(targets)}


_PALETTE = np.array([[0, 0, 0], [1, 1, 1], [0, 1, 0], [1, 0, 0]], dtype=np.float32)  # wall, open, start, goal


def to_rgb(codes: np.ndarray) -> np.ndarray:
    """(B,H,W) codes -> (B,3,H,W) float32 RGB in [0, 1]."""
    return np.ascontiguousarray(_PALETTE[codes].transpose(0, 3, 1, 2))
