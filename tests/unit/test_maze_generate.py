from collections import deque

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tenfold.studies.maze.generate import GOAL, OPEN, START, WALL, carve, generate, image_side, render, to_rgb


def grid_graph(codes):
    """Open grid cells (anything but wall) and their 4-neighbour adjacency."""
    open_ = codes != WALL
    nodes = list(zip(*np.nonzero(open_)))
    edges = 0
    for r, c in nodes:
        for dr, dc in ((0, 1), (1, 0)):
            rr, cc = r + dr, c + dc
            if rr < codes.shape[0] and cc < codes.shape[1] and open_[rr, cc]:
                edges += 1
    return open_, nodes, edges


def bfs_path(codes):
    open_ = codes != WALL
    s = tuple(np.argwhere(codes == START)[0])
    g = tuple(np.argwhere(codes == GOAL)[0])
    prev = {s: None}
    q = deque([s])
    while q:
        u = q.popleft()
        for dr, dc in ((0, 1), (1, 0), (0, -1), (-1, 0)):
            v = (u[0] + dr, u[1] + dc)
            if 0 <= v[0] < codes.shape[0] and 0 <= v[1] < codes.shape[1] and open_[v] and v not in prev:
                prev[v] = u
                q.append(v)
    mask = np.zeros(codes.shape, np.uint8)
    v = g
    while v is not None:
        mask[v] = 1
        v = prev[v]
    return mask, len(prev)


@settings(max_examples=40, deadline=None)
@given(size=st.sampled_from([3, 5, 7, 9, 13]), seed=st.integers(0, 10_000))
def test_every_maze_is_perfect_and_target_is_the_unique_path(size, seed):
    grid, path, ends = carve(3, size, np.random.default_rng(seed))
    n = (size + 1) // 2
    for b in range(3):
        open_, nodes, edges = grid_graph(grid[b])
        # a connected graph with V-1 edges is a tree: exactly one path between any two cells
        assert len(nodes) == 2 * n * n - 1
        assert edges == len(nodes) - 1
        mask, reached = bfs_path(grid[b])
        assert reached == len(nodes)  # connected
        np.testing.assert_array_equal(mask, path[b])  # target = the (shortest, unique) path incl. endpoints
        assert (grid[b] == START).sum() == 1 and (grid[b] == GOAL).sum() == 1
        assert ends[b, 0] != ends[b, 1]


@pytest.mark.parametrize("size,scale", [(9, 1), (9, 2), (13, 2), (59, 2)])
def test_shapes_and_layout(size, scale):
    d = generate(4, size, scale=scale, seed=1)
    side = image_side(size, scale)
    assert d["codes"].shape == (4, side, side) == d["targets"].shape
    if scale == 2:
        assert side == 2 * size + 6  # the easy-to-hard-data layout
    # 1-pixel black frame
    assert (d["codes"][:, 0] == WALL).all() and (d["codes"][:, :, -1] == WALL).all()
    rgb = to_rgb(d["codes"])
    assert rgb.shape == (4, 3, side, side)
    start = d["codes"] == START
    assert np.allclose(rgb.transpose(0, 2, 3, 1)[start], [0, 1, 0])
    assert np.allclose(rgb.transpose(0, 2, 3, 1)[d["codes"] == GOAL], [1, 0, 0])
    assert np.allclose(rgb.transpose(0, 2, 3, 1)[d["codes"] == OPEN], [1, 1, 1])
    if scale == 2:  # start and goal cover a whole 2x2 cell
        assert start.sum() == 4 * 4


def test_deterministic_and_seed_dependent():
    a = generate(50, 9, scale=1, seed=3)
    b = generate(50, 9, scale=1, seed=3)
    c = generate(50, 9, scale=1, seed=4)
    np.testing.assert_array_equal(a["codes"], b["codes"])
    assert not np.array_equal(a["codes"], c["codes"])
    # chunking does not change the stream's validity, and mazes in a batch differ
    assert len({m.tobytes() for m in a["codes"]}) == 50


def test_render_scales_path_with_grid():
    grid, path, _ = carve(2, 5, np.random.default_rng(0))
    g2, p2 = render(grid, path, 2)
    assert g2.shape[-1] == 2 * grid.shape[-1] + 2
    assert p2.sum() == 4 * path.sum()


def test_bad_sizes():
    with pytest.raises(ValueError, match="odd"):
        generate(1, 8)
    with pytest.raises(ValueError, match="scale"):
        generate(1, 9, scale=0)
