"""Binary-map operations the finders need, in numpy alone (no OpenCV in the plain install)."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["close", "label_components", "largest_component"]


def _filter(binary: np.ndarray, k: int, op, pad_value: bool) -> np.ndarray:
    """A k x k square max/min filter, separable: rows then columns."""
    r = k // 2
    out = np.pad(binary, ((0, 0), (r, r)), constant_values=pad_value)
    out = op(sliding_window_view(out, k, axis=1), axis=-1)
    out = np.pad(out, ((r, r), (0, 0)), constant_values=pad_value)
    return op(sliding_window_view(out, k, axis=0), axis=-1)


def close(binary: np.ndarray, k: int) -> np.ndarray:
    """Morphological closing with a k x k square (k odd): gaps narrower than k are filled.

    The border does not erode (as OpenCV's default border for closing)."""
    if k <= 1:
        return binary.astype(bool)
    return _filter(_filter(binary.astype(bool), k, np.max, False), k, np.min, True)


def label_components(binary: np.ndarray) -> np.ndarray:
    """The 8-connected regions of a bool map: an int32 map, 0 outside, 1..N inside (in order of first pixel).

    Works on horizontal runs of pixels with a union-find: a map of a few
    hundred pixels a side has a few hundred runs, so this takes well under a
    millisecond in Python.
    """
    binary = np.asarray(binary, bool)
    labels = np.zeros(binary.shape, np.int32)
    if not binary.any():
        return labels
    edges = np.diff(np.pad(binary, ((0, 0), (1, 1))).astype(np.int8), axis=1)
    rows, starts = np.nonzero(edges == 1)  # row-major: runs in order
    _, ends = np.nonzero(edges == -1)  # end column, exclusive
    n = len(rows)
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    row_first = np.searchsorted(rows, np.arange(binary.shape[0] + 1))
    for r in range(1, binary.shape[0]):
        a, a_end = row_first[r - 1], row_first[r]  # the runs of the row above
        b, b_end = row_first[r], row_first[r + 1]
        while a < a_end and b < b_end:
            # 8-connected: runs touch when they overlap or meet at a corner
            if starts[a] <= ends[b] and starts[b] <= ends[a]:
                ra, rb = root(a), root(b)
                if ra != rb:
                    parent[max(ra, rb)] = min(ra, rb)
            if ends[a] < ends[b]:
                a += 1
            else:
                b += 1
    roots = np.array([root(i) for i in range(n)])
    _, label_of_run = np.unique(roots, return_inverse=True)  # roots are run indices: first-pixel order
    for i in range(n):
        labels[rows[i], starts[i] : ends[i]] = label_of_run[i] + 1
    return labels


def largest_component(binary: np.ndarray) -> np.ndarray:
    """The largest 8-connected region of a bool map (empty map -> empty map)."""
    labels = label_components(binary)
    if not labels.any():
        return np.zeros(labels.shape, bool)
    area = np.bincount(labels.ravel())
    area[0] = 0
    return labels == int(area.argmax())
