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


# A seamless loop travels out and back in the time the one-way move takes; going this share
# of the way keeps its top speed where the preset has it, so a slow push stays slow: an
# ease-in-out push peaks at 1.5 times its mean speed, (1 - cos 2 pi u) / 2 at pi / 2 times
# it; the orbit's ellipse at pi times the arc's width a clip, the smooth arc at 1.875 times.
LOOP_REACH = 0.5


def _there_and_back(frames: int) -> np.ndarray:
    """Progress 0 -> 1 -> 0 over one loop of `frames` frames, (1 - cos 2 pi u) / 2.

    Frame `frames` (one past the last) is phase 1, the same as frame 0, and the curve is
    at rest at both ends and at its turn, so a looped move never jerks at the seam.
    """
    u = np.arange(frames, dtype=np.float64) / max(frames, 1)
    return 0.5 - 0.5 * np.cos(2.0 * math.pi * u)


# One sinusoid of a sway: (weight, frequency in Hz, phase); the weights sum to about 1.96.
Wave = tuple[float, float, float]


def _sway_waves(
    rng: np.random.Generator, freqs: tuple[float, float], period: float | None = None
) -> list[Wave]:
    """Three slow sinusoids with seeded frequencies and phases.

    With a period (s), each frequency is rounded to a whole number of cycles per period,
    all different (three equal ones would add up to one plain sine), so the sway repeats;
    a wave made faster that way is made smaller in step, so it moves no faster than asked.
    """
    waves = []
    cycles = 0
    for k in range(3):
        f = rng.uniform(*freqs) * (1.0 + 0.35 * k)
        phase = rng.uniform(0, 2 * math.pi)
        weight = math.pow(0.6, k)
        if period:
            cycles = max(cycles + 1, round(f * period))
            weight *= min(1.0, f * period / cycles)
            f = cycles / period
        waves.append((weight, f, phase))
    return waves


def _sway(waves: list[Wave], t: np.ndarray) -> np.ndarray:
    """The sway at times t (s), peak about 1."""
    return sum(w * np.sin(2.0 * math.pi * f * t + ph) for w, f, ph in waves) / 1.96


def _sway_speed(waves: list[Wave], t: np.ndarray) -> np.ndarray:
    """Its rate of change at times t (per second)."""
    return (
        sum(2.0 * math.pi * f * w * np.cos(2.0 * math.pi * f * t + ph) for w, f, ph in waves) / 1.96
    )


def _slowest(speeds: list[np.ndarray], t: np.ndarray) -> float:
    """The time in t at which the summed squares of the speeds are least."""
    return float(t[int(np.argmin(sum(v * v for v in speeds)))])


def camera_path(
    move: CameraMove,
    frames: int,
    fps: float,
    width: int,
    height: int,
    rng: np.random.Generator,
    focus_offset: tuple[float, float] = (0.0, 0.0),
    periodic: bool = False,
) -> CameraPath:
    """The eased path for one camera move; focus_offset is the focus point's screen position
    relative to the frame centre (output px), which push-in and pull-out zoom towards.

    periodic: the path repeats after `frames` frames (frame `frames` would equal frame 0),
    for a seamless loop. A move that travels somewhere comes back on the smooth curve
    (1 - cos 2 pi u) / 2 instead of its easing: push-in pushes in and returns, pull-out
    pulls back and returns, pan and tilt look across and back, dolly-zoom stretches the
    depth and relaxes it. Orbit goes on round: its usual arc over the first half of the
    loop, then back on the other side of an ellipse. Each goes LOOP_REACH of its one-way
    travel, so it moves about as fast as the preset's move, not twice as fast. Handheld sways with whole cycles per loop, and the loop starts where
    the sway is slowest, so the seam falls at the calmest moment. Locked-off needs nothing.
    """
    if move.move not in CAMERA_MOVES:
        raise JobError(f"Unknown camera move '{move.move}'; use one of {', '.join(CAMERA_MOVES)}.")
    n = max(int(frames), 1)
    s = float(np.clip(move.strength, 0.0, 1.0))
    unit = math.sqrt(width * height)  # aspect-neutral "frame size"
    fps = max(float(fps), 1e-3)
    p = LOOP_REACH * _there_and_back(n) if periodic else ease(move.easing, _progress(n))
    t = np.arange(n, dtype=np.float64) / fps
    period = n / fps if periodic else None
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
        mid = 0.5 * LOOP_REACH if periodic else 0.5  # a loop looks either side of centre
        cx = travel * (p - mid) * ux
        cy = travel * (p - mid) * uy
        # Looking further right moves near layers faster across the screen than far ones.
        px = -gain * cx
        py = -gain * cy
        zoom = np.full(n, 1.0 + 0.02 * s)
    elif move.move == "orbit":
        amp = 0.045 * unit * s * (LOOP_REACH if periodic else 1.0)
        sign = 1.0 if math.cos(ang) >= 0 else -1.0
        # The subject plane stays put while nearer and farther layers swing in an arc.
        if periodic:
            turn = 2.0 * math.pi * np.arange(n, dtype=np.float64) / n
            u = -np.cos(turn)
            arc = np.sin(turn)  # the usual arc, then its mirror on the way back
        else:
            u = 2.0 * p - 1.0
            arc = 1.0 - u * u
        px = amp * u * sign
        py = -0.25 * amp * arc
        zoom = 1.0 + 0.05 * s * p
        roll = 0.004 * s * u * sign
    elif move.move == "dolly-zoom":
        # Zoom held so the focus plane keeps its size; the dolly stretches depth around it.
        sign = 1.0 if math.cos(ang) >= 0 else -1.0
        dolly = -0.35 * s * p * sign
        zoom = np.full(n, 1.0 + 0.04 * s)
    elif move.move == "handheld":
        amp = 0.01 * unit * s
        sway_x = _sway_waves(rng, (0.08, 0.22), period)
        sway_y = _sway_waves(rng, (0.08, 0.22), period)
        sway_roll = _sway_waves(rng, (0.06, 0.16), period)
        if period:
            # Any start is as good as another in a loop: take the calmest (roll counted as the
            # sideways pixels it moves half-way out from the centre).
            fine = np.arange(256, dtype=np.float64) * period / 256
            t = t + _slowest(
                [amp * _sway_speed(sway_x, fine), 0.8 * amp * _sway_speed(sway_y, fine),
                 0.5 * unit * 0.003 * s * _sway_speed(sway_roll, fine)],
                fine,
            )  # fmt: skip
        cx = amp * _sway(sway_x, t)
        cy = 0.8 * amp * _sway(sway_y, t)
        px = -0.4 * cx
        py = -0.4 * cy
        roll = 0.003 * s * _sway(sway_roll, t)
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
