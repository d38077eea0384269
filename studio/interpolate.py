"""Raise a clip's frame rate on the CPU: new frames between a model's frames, on an exact time grid.

A model renders at its own rate (SVD 6-7 fps, CogVideoX 8, Wan 16); the plan asks for more.
interpolate() streams the source frames and yields the plan's frames: output frame k shows
time k / dst_fps, which falls between two source frames (or on one, which passes through
untouched). "flow" builds each in-between frame from dense optical flow (OpenCV DIS, run on
a reduced copy): the motion of both neighbours is carried to the in-between time, each
neighbour is warped there, and the two are blended where each one actually sees the point
(forward/backward flow consistency), so a moving edge does not leave a ghost. "blend"
(cross-fade) and "repeat" (nearest frame) are the baselines it is measured against
(benchmarks/bench_interpolate.py).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Iterator
from fractions import Fraction

import cv2
import numpy as np

METHODS = ("flow", "blend", "repeat")
# Optical flow runs on a copy whose long side is at most this (px): finer costs time and
# measured no sharper frames (the warp itself runs at full size).
FLOW_SIDE = 384
# How far (flow px) a neighbour's own motion may differ from the in-between motion before
# that neighbour is taken to see something else there (an occlusion): a floor plus a
# share of the motion, since long motions are estimated less exactly.
VISIBLE_PX = 1.0
VISIBLE_SHARE = 0.15
# A pixel whose motion is this badly supported (grey levels plus 8 per px of forward/
# backward disagreement) is not carried to the in-between time; its place is filled
# from its neighbours instead.
UNTRUSTED = 60.0
# Bicubic warping: bilinear's blur at half-pixel shifts cost 2-4 dB against a true render.
WARP = cv2.INTER_CUBIC


def _rate(fps: float) -> Fraction:
    if isinstance(fps, bool) or not isinstance(fps, (int, float, Fraction)):
        raise ValueError(f"a frame rate must be a positive number, not {fps!r}")
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"a frame rate must be a positive number, not {fps!r}")
    # 23.976 and friends become 24000/1001, so a long clip's time grid does not drift.
    return Fraction(fps).limit_denominator(1001)


def output_count(frames: int, src_fps: float, dst_fps: float) -> int:
    """Frames interpolate() yields for `frames` source frames: the same duration at dst_fps.

    Output frame k shows time k / dst_fps; every k before the end of the source clip
    (frames / src_fps) is made, so 6 -> 24 fps is exactly 4x and 16 -> 24 fps is 1.5x,
    rounded up.
    """
    if frames <= 0:
        return 0
    return math.ceil(Fraction(frames) * _rate(dst_fps) / _rate(src_fps))


def interpolate(
    frames: Iterable[np.ndarray], src_fps: float, dst_fps: float, method: str = "flow"
) -> Iterator[np.ndarray]:
    """Yield `frames` (RGB uint8, all one size) resampled from src_fps to dst_fps.

    Streams: at most two source frames (and the flow between them) are held at a time.
    Equal rates pass the frames through untouched. An output frame that falls on a source
    frame is that frame; those after the last source frame (its last 1/src_fps) repeat it.
    """
    if method not in METHODS:
        raise ValueError(f"unknown interpolation method {method!r}; use one of {METHODS}")
    src, dst = _rate(src_fps), _rate(dst_fps)
    if src == dst:
        yield from frames
        return
    step = src / dst  # source frames per output frame, exact
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM) if method == "flow" else None
    # Copies: a backend may hand out one buffer for every frame, and two are held here.
    it = (np.array(frame, copy=True) for frame in frames)
    prev = next(it, None)
    if prev is None:
        return
    i, k = 0, 0  # prev is source frame i; output frame k is next
    for nxt in it:
        pair = None
        while k * step < i + 1:
            t = k * step - i
            if t == 0:
                yield prev
            elif method == "repeat":
                yield prev if t < Fraction(1, 2) else nxt
            elif method == "blend":
                yield cv2.addWeighted(prev, float(1 - t), nxt, float(t), 0.0)
            else:
                pair = pair or FlowPair(prev, nxt, dis)
                yield pair.at(float(t))
            k += 1
        prev, i = nxt, i + 1
    while k * step < i + 1:
        yield prev
        k += 1


class FlowPair:
    """Two neighbouring frames and the dense motion between them, ready to make any in-between."""

    def __init__(self, a: np.ndarray, b: np.ndarray, dis: cv2.DISOpticalFlow | None = None):
        if a.shape != b.shape:
            raise ValueError(f"frames differ in size: {a.shape} and {b.shape}")
        self.a, self.b = a, b
        H, W = a.shape[:2]
        f = min(1.0, FLOW_SIDE / max(H, W))
        w, h = max(16, round(W * f)), max(16, round(H * f))
        self.size, self.full, self.scale = (w, h), (W, H), (W / w, H / h)
        ga, gb = _grey(a, (w, h)), _grey(b, (w, h))
        dis = dis or cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        self.f01 = dis.calc(ga, gb, None)
        self.f10 = dis.calc(gb, ga, None)
        self.gx, self.gy = _grid(w, h)
        # Every pixel of both frames is a candidate for where things are at time t: where it
        # starts, its a -> b motion, and its own time (0 for a, 1 for b). Where two land on
        # one place the better supported one wins (the surface in front is seen in both
        # frames and moves as one; the one it covers has no match in the other frame), so
        # they are kept most trusted first; badly supported ones are left out.
        cost = np.concatenate([_cost(ga, gb, self.f01, self.f10, self.gx, self.gy).ravel(),
                               _cost(gb, ga, self.f10, self.f01, self.gx, self.gy).ravel()])  # fmt: skip
        order = np.argsort(cost, kind="stable")
        order = order[cost[order] < UNTRUSTED]
        gx, gy = np.tile(self.gx.ravel(), 2), np.tile(self.gy.ravel(), 2)
        motion = np.concatenate([self.f01.reshape(-1, 2), -self.f10.reshape(-1, 2)])
        self.start_x, self.start_y = gx[order], gy[order]
        self.motion = motion[order]
        self.own_t = (order >= w * h).astype(np.float32)
        self.fx, self.fy = _grid(W, H)

    def at(self, t: float) -> np.ndarray:
        """The frame at time t in (0, 1) between a (t=0) and b (t=1)."""
        w, h = self.size
        # 1. The a -> b motion of whatever is at each place at time t.
        v = self._motion_at(t)
        vx, vy = v[..., 0], v[..., 1]
        # 2. Whether each neighbour sees that point: its own motion there is the same.
        m0x, m0y = self.gx - t * vx, self.gy - t * vy
        m1x, m1y = self.gx + (1 - t) * vx, self.gy + (1 - t) * vy
        tol2 = (VISIBLE_PX + VISIBLE_SHARE * np.sqrt(vx * vx + vy * vy)) ** 2
        vis0 = np.exp(-_sq(_sample(self.f01, m0x, m0y) - v) / tol2) * _inside(m0x, m0y, w, h)
        vis1 = np.exp(-_sq(_sample(self.f10, m1x, m1y) + v) / tol2) * _inside(m1x, m1y, w, h)
        # Time weights scaled by visibility; a point neither sees well falls back to time.
        w0 = ((1 - t) * (vis0 + 0.02)).astype(np.float32)
        w1 = (t * (vis1 + 0.02)).astype(np.float32)

        # 3. At full size: each neighbour warped to time t, blended by those weights.
        W, H = self.full
        sx, sy = self.scale
        up = cv2.resize(v, (W, H), interpolation=cv2.INTER_LINEAR)
        ux, uy = up[..., 0] * np.float32(sx), up[..., 1] * np.float32(sy)
        a = cv2.remap(self.a, self.fx - t * ux, self.fy - t * uy, WARP,
                      borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
        b = cv2.remap(self.b, self.fx + (1 - t) * ux, self.fy + (1 - t) * uy, WARP,
                      borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
        w0 = cv2.resize(w0, (W, H), interpolation=cv2.INTER_LINEAR)
        w1 = cv2.resize(w1, (W, H), interpolation=cv2.INTER_LINEAR)
        return cv2.blendLinear(a, b, w0, w1)

    def _motion_at(self, t: float) -> np.ndarray:
        """Both frames' motion carried to where their pixels are at time t (a forward splat).

        A pixel of a is at x + t*f01 at time t, a pixel of b at x + (1-t)*f10; where several
        land on one place the most trusted wins. Places nothing lands on (uncovered or
        untrusted) are filled from their neighbours.
        """
        w, h = self.size
        dt = t - self.own_t
        ix = np.rint(self.start_x + dt * self.motion[:, 0]).astype(np.int64)
        iy = np.rint(self.start_y + dt * self.motion[:, 1]).astype(np.int64)
        ok = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
        # Candidates are in trust order, so the lowest position landing on a place wins it.
        best = np.full(w * h, len(ix), np.int64)
        np.minimum.at(best, (iy * w + ix)[ok], np.flatnonzero(ok))
        landed = best < len(ix)
        v = np.zeros((w * h, 2), np.float32)
        v[landed] = self.motion[best[landed]]
        return _fill_holes(v.reshape(h, w, 2), landed.reshape(h, w))


@functools.lru_cache(maxsize=8)
def _grid(w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel x and y coordinates of a w x h image (shared, read-only: every take of a size)."""
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    gx.flags.writeable = gy.flags.writeable = False
    return gx, gy


def _grey(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    g = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    if (g.shape[1], g.shape[0]) != size:
        g = cv2.resize(g, size, interpolation=cv2.INTER_AREA)
    return g


def _sq(d: np.ndarray) -> np.ndarray:
    return d[..., 0] * d[..., 0] + d[..., 1] * d[..., 1]


def _sample(field: np.ndarray, mx: np.ndarray, my: np.ndarray) -> np.ndarray:
    return cv2.remap(field, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _inside(mx: np.ndarray, my: np.ndarray, w: int, h: int) -> np.ndarray:
    return ((mx >= -0.5) & (mx <= w - 0.5) & (my >= -0.5) & (my <= h - 0.5)).astype(np.float32)


def _cost(
    ga: np.ndarray, gb: np.ndarray, fab: np.ndarray, fba: np.ndarray, gx: np.ndarray, gy: np.ndarray
) -> np.ndarray:
    """Per pixel of a: how badly its motion to b is supported (grey levels + px of disagreement)."""
    mx, my = gx + fab[..., 0], gy + fab[..., 1]
    seen = cv2.remap(gb, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    photo = np.abs(ga.astype(np.float32) - seen.astype(np.float32))
    disagree = np.sqrt(_sq(fab + _sample(fba, mx, my)))
    h, w = ga.shape
    gone = 1e3 * (1.0 - _inside(mx, my, w, h))  # leaves the frame: nothing to check it against
    return photo + 8.0 * disagree + gone


def _fill_holes(v: np.ndarray, landed: np.ndarray) -> np.ndarray:
    """Fill places nothing landed on with the mean motion of landed places ever further out."""
    if landed.all():
        return v
    m = landed.astype(np.float32)
    acc = v * m[..., None]
    todo = ~landed
    size = 3
    while todo.any() and size <= 257:
        den = cv2.blur(m, (size, size))
        got = todo & (den > 1e-3)
        if got.any():
            num = cv2.blur(acc, (size, size))
            v[got] = num[got] / den[got][:, None]
            todo &= ~got
        size = size * 2 + 1
    v[todo] = 0.0
    return v
