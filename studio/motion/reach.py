"""Which output pixels a frame's source maps send into a box, found on a sparse sample of the maps."""

from __future__ import annotations

import cv2
import numpy as np


def sampled_window(
    sx: np.ndarray, sy: np.ndarray, box, step: int, shape: tuple[int, int]
) -> tuple[slice, slice] | None:
    """The output rows and columns (of an array of `shape`) whose positions may fall in box.

    sx, sy: the maps' positions on every step-th output pixel (rows and columns 0, step, ...).
    A pixel inside the box has a sample within step px whose position is at most `reach`
    away (the most the positions change between neighbouring samples), so the samples are
    tested against the box grown by reach, and the window they give is grown by step px.
    No pixel inside is missed. box: x0, y0, x1, y1 (inclusive; infinite sides allowed).
    """
    sx, sy = np.ascontiguousarray(sx), np.ascontiguousarray(sy)
    reach = 0.0
    for s in (sx, sy):  # the largest step between neighbouring samples, down and across
        if s.shape[0] > 1:
            reach = max(reach, cv2.norm(s[1:], s[:-1], cv2.NORM_INF))
        if s.shape[1] > 1:
            reach = max(reach, cv2.norm(s[:, 1:], s[:, :-1], cv2.NORM_INF))
    lo = (max(box[0] - reach, -3e38), max(box[1] - reach, -3e38))
    hi = (min(box[2] + reach, 3e38), min(box[3] + reach, 3e38))
    inside = cv2.inRange(cv2.merge([sx, sy]), lo, hi) > 0
    rows, cols = np.nonzero(inside.any(axis=1))[0], np.nonzero(inside.any(axis=0))[0]
    if rows.size == 0:
        return None
    h, w = shape
    k = step
    return (
        slice(max(0, k * int(rows[0]) - k), min(h, k * int(rows[-1]) + 1 + k)),
        slice(max(0, k * int(cols[0]) - k), min(w, k * int(cols[-1]) + 1 + k)),
    )


def window(mx: np.ndarray, my: np.ndarray, box, step: int) -> tuple[slice, slice] | None:
    """sampled_window on full maps: the output rows and columns whose (mx, my) may fall in box."""
    return sampled_window(mx[::step, ::step], my[::step, ::step], box, step, mx.shape)
