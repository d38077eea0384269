"""Eased virtual camera paths: per-frame zoom, dolly, pan, parallax and roll for every camera move."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from studio.errors import JobError
from studio.plan import CAMERA_MOVES, CameraMove


def ease(name: str, p: np.ndarray) -> np.ndarray:
    """Map linear progress 0..1 through the named easing curve (all start at 0, end at 1)."""
    p = np.clip(p, 0.0, 1.0)
    if name == "linear":
        return p
    if name == "ease-in-out":
        return p * p * (3.0 - 2.0 * p)
    if name == "ease-in":
        return p * p
    if name == "ease-out":
        return 1.0 - (1.0 - p) ** 2
    if name == "smooth":
        return p * p * p * (p * (6.0 * p - 15.0) + 10.0)
    raise JobError(
        f"Unknown easing '{name}'; use linear, ease-in-out, ease-in, ease-out or smooth."
    )


@dataclass(frozen=True)
class CameraPath:
    """Per-frame camera state; lengths are output pixels, roll is radians.

    A pixel at (x, y) from the frame centre with parallax weight w (its depth minus the
    focus plane's) samples the photo at centre + sc * (rot(x, y) / zoom + (cx, cy)
    - w * ((x, y) * dolly / zoom + (px, py))): zoom magnifies everything, dolly magnifies
    near layers more than far ones, (px, py) slides layers by depth.
    """

    zoom: np.ndarray
    dolly: np.ndarray
    cx: np.ndarray
    cy: np.ndarray
    px: np.ndarray
    py: np.ndarray
    roll: np.ndarray

    @property
    def frames(self) -> int:
        return int(self.zoom.shape[0])


def _progress(frames: int) -> np.ndarray:
    if frames <= 1:
        return np.zeros(max(frames, 1))
    return np.arange(frames, dtype=np.float64) / (frames - 1)


def _sway(rng: np.random.Generator, t: np.ndarray, freqs: tuple[float, float]) -> np.ndarray:
    """Sum of three slow sinusoids with seeded frequencies and phases, peak about 1."""
    out = np.zeros_like(t)
    for k in range(3):
        f = rng.uniform(*freqs) * (1.0 + 0.35 * k)
        out += math.pow(0.6, k) * np.sin(2.0 * math.pi * f * t + rng.uniform(0, 2 * math.pi))
    return out / 1.96


def camera_path(
    move: CameraMove,
    frames: int,
    fps: float,
    width: int,
    height: int,
    rng: np.random.Generator,
    focus_offset: tuple[float, float] = (0.0, 0.0),
) -> CameraPath:
    """The eased path for one camera move; focus_offset is the focus point's screen position
    relative to the frame centre (output px), which push-in and pull-out zoom towards."""
    if move.move not in CAMERA_MOVES:
        raise JobError(f"Unknown camera move '{move.move}'; use one of {', '.join(CAMERA_MOVES)}.")
    n = max(int(frames), 1)
    s = float(np.clip(move.strength, 0.0, 1.0))
    unit = math.sqrt(width * height)  # aspect-neutral "frame size"
    p = ease(move.easing, _progress(n))
    t = np.arange(n, dtype=np.float64) / max(float(fps), 1e-3)
    ang = math.radians(move.direction)
    dx, dy = math.cos(ang), -math.sin(ang)  # screen y points down, angle 90 = up
    zero = np.zeros(n)
    zoom, dolly = np.ones(n), zero.copy()
    cx, cy, px, py, roll = zero.copy(), zero.copy(), zero.copy(), zero.copy(), zero.copy()
    fx, fy = focus_offset

    if move.move in ("push-in", "pull-out"):
        q = p if move.move == "push-in" else 1.0 - p
        zoom = 1.0 + 0.2 * s * q
        # Dolly, not just zoom: near layers grow faster than the background.
        dolly = 0.3 * s * q
        drift = 0.012 * unit * s * q
        cx = fx * (1.0 - 1.0 / zoom) + drift * dx
        cy = fy * (1.0 - 1.0 / zoom) + drift * dy
    elif move.move in ("pan", "tilt"):
        travel = 0.1 * unit * s
        if move.move == "pan":
            ux, uy = (dx, dy) if abs(dx) > 1e-6 or abs(dy) > 1e-6 else (1.0, 0.0)
            gain = 0.6
        else:
            ux, uy = (0.0, -1.0) if math.sin(ang) >= 0 else (0.0, 1.0)
            gain = 0.35
        cx = travel * (p - 0.5) * ux
        cy = travel * (p - 0.5) * uy
        # Looking further right moves near layers faster across the screen than far ones.
        px = -gain * cx
        py = -gain * cy
        zoom = np.full(n, 1.0 + 0.02 * s)
    elif move.move == "orbit":
        amp = 0.045 * unit * s
        sign = 1.0 if math.cos(ang) >= 0 else -1.0
        u = 2.0 * p - 1.0
        # The subject plane stays put while nearer and farther layers swing in an arc.
        px = amp * u * sign
        py = -0.25 * amp * (1.0 - u * u)
        zoom = 1.0 + 0.05 * s * p
        roll = 0.004 * s * u * sign
    elif move.move == "dolly-zoom":
        # Zoom held so the focus plane keeps its size; the dolly stretches depth around it.
        sign = 1.0 if math.cos(ang) >= 0 else -1.0
        dolly = -0.35 * s * p * sign
        zoom = np.full(n, 1.0 + 0.04 * s)
    elif move.move == "handheld":
        amp = 0.01 * unit * s
        cx = amp * _sway(rng, t, (0.08, 0.22))
        cy = 0.8 * amp * _sway(rng, t, (0.08, 0.22))
        px = -0.4 * cx
        py = -0.4 * cy
        roll = 0.003 * s * _sway(rng, t, (0.06, 0.16))
        zoom = np.full(n, 1.0 + 0.015 * s)
    # locked-off: the identity path
    return CameraPath(
        zoom=np.asarray(zoom, np.float64),
        dolly=np.asarray(dolly, np.float64),
        cx=np.asarray(cx, np.float64),
        cy=np.asarray(cy, np.float64),
        px=np.asarray(px, np.float64),
        py=np.asarray(py, np.float64),
        roll=np.asarray(roll, np.float64),
    )
