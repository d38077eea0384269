"""Ambient motion layered on the camera: wind, light sweep, clouds, fog, shimmer.

Every effect is temporally continuous: displacement fields are fixed spatial patterns
whose phase advances with time (sin(phi + wt) = sin(phi)cos(wt) + cos(phi)sin(wt), so a
frame costs two weighted adds), and fog is noise that drifts by sub-pixel steps. A
portrait's own motions (breathing, blinks, a head turn) live in studio.motion.life.

For a seamless loop (periodic) every effect repeats after the clip's frame count: waves
run a whole number of cycles per loop, the light sweep's band leaves one side as it comes
in on the other, and the two effects that drift one way (clouds, fog) are cross-faded with
themselves one loop earlier, so at the loop's end they are back where they started.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np

from studio.errors import JobError
from studio.motion.filters import smooth_noise
from studio.plan import AMBIENT_KINDS, Ambient

# Peak displacement of each warp effect at strength 1, as a fraction of the frame size.
WIND_AMP = 0.004
SHIMMER_AMP = 0.003
CLOUD_SPEED = 0.012  # per second


def check_kinds(ambient: tuple[Ambient, ...]) -> None:
    for a in ambient:
        if a.kind not in AMBIENT_KINDS:
            raise JobError(
                f"Unknown ambient motion '{a.kind}'; use one of {', '.join(AMBIENT_KINDS)}."
            )


def strengths(ambient: tuple[Ambient, ...]) -> dict[str, float]:
    """Strength per kind in 0..1 (repeated kinds add up, capped at 1)."""
    out: dict[str, float] = {}
    for a in ambient:
        out[a.kind] = min(1.0, out.get(a.kind, 0.0) + max(0.0, float(a.strength)))
    return {k: v for k, v in out.items() if v > 0.0}


def displacement_margin(ambient: tuple[Ambient, ...], unit: float, duration: float) -> float:
    """Most output pixels the warp effects can move a background sample (for overscan)."""
    s = strengths(ambient)
    margin = 0.0
    margin += 1.5 * WIND_AMP * unit * s.get("wind", 0.0)
    margin += 1.5 * SHIMMER_AMP * unit * s.get("shimmer", 0.0)
    clouds = s.get("clouds", 0.0)
    margin += clouds * (CLOUD_SPEED * unit * duration + 1.5 * WIND_AMP * unit)
    return margin


class _Wave:
    """A displacement pattern amp*sin(phase(x,y) + w*t) added to both remap maps."""

    def __init__(
        self,
        field: np.ndarray,
        phase: np.ndarray,
        omega: float,
        ratio_y: float,
        ratio_x: float = 1.0,
    ):
        self.s = np.ascontiguousarray((field * np.sin(phase)).astype(np.float32))
        self.c = np.ascontiguousarray((field * np.cos(phase)).astype(np.float32))
        self.omega = omega
        self.rx = ratio_x
        self.ry = ratio_y

    def add(self, t: float, mx: np.ndarray, my: np.ndarray, buf: np.ndarray) -> None:
        cv2.addWeighted(
            self.s, math.cos(self.omega * t), self.c, math.sin(self.omega * t), 0.0, dst=buf
        )
        if self.rx:
            cv2.scaleAdd(buf, self.rx, mx, dst=mx)
        if self.ry:
            cv2.scaleAdd(buf, self.ry, my, dst=my)


class AmbientRig:
    """The ambient effects of one plan, precomputed on the output grid."""

    def __init__(
        self,
        ambient: tuple[Ambient, ...],
        rng: np.random.Generator,
        width: int,
        height: int,
        fps: float,
        frames: int,
        sc: float,
        sample: Callable[[np.ndarray], np.ndarray],
        fog_depth: np.ndarray,
        fog_colour: np.ndarray,
        periodic: bool = False,
    ) -> None:
        """sample(mask) resamples a working-resolution mask onto the output grid; periodic
        makes every effect repeat after `frames` frames (a seamless loop)."""
        check_kinds(ambient)
        s = strengths(ambient)
        self.fps = max(float(fps), 1e-3)
        self.frames = frames
        self.periodic = periodic
        self.period = max(frames, 1) / self.fps  # s; frame `frames` is the loop's frame 0
        self.width, self.height = width, height
        unit = math.sqrt(width * height)
        self.waves: list[_Wave] = []
        self.cloud_field: np.ndarray | None = None
        self.cloud_speed = 0.0
        xs = np.arange(width, dtype=np.float32)[None, :]
        ys = np.arange(height, dtype=np.float32)[:, None]
        shape = (height, width)

        if "wind" in s:
            mask = sample("foliage")
            amp = WIND_AMP * unit * s["wind"] * sc
            ang = rng.uniform(-0.4, 0.4)
            wl = 0.35 * unit
            base = (xs * math.cos(ang) + ys * math.sin(ang)) / wl
            for k, (freq, weight) in enumerate(((0.55, 1.0), (1.1, 0.45))):
                noise = smooth_noise(rng, shape, 6 + 4 * k)
                phase = 2.0 * math.pi * (base * (1 + k) + 1.5 * noise)
                self.waves.append(
                    _Wave(
                        amp * weight * mask,
                        phase,
                        self._omega(freq, rng.uniform(0.85, 1.15)),
                        0.35,
                    )
                )
        if "shimmer" in s:
            mask = sample("water")
            amp = SHIMMER_AMP * unit * s["shimmer"] * sc
            for k, (wl, freq) in enumerate(((0.025, 1.3), (0.045, 0.8))):
                noise = smooth_noise(rng, shape, 8)
                phase = 2.0 * math.pi * (ys / (wl * unit) + 0.6 * noise + 0.1 * xs / unit)
                self.waves.append(
                    _Wave(amp * (1.0 - 0.4 * k) * mask, phase, self._omega(freq), 0.5, 1.0)
                )
        if "clouds" in s:
            mask = sample("sky")
            sign = 1.0 if rng.random() < 0.5 else -1.0
            self.cloud_field = np.ascontiguousarray(mask.astype(np.float32))
            self.cloud_speed = -sign * CLOUD_SPEED * unit * s["clouds"] * sc
            # A slow morph so clouds evolve instead of sliding as one sheet.
            noise = smooth_noise(rng, shape, 5)
            phase = 2.0 * math.pi * (1.5 * noise + xs / (0.5 * unit))
            self.waves.append(
                _Wave(1.5 * WIND_AMP * unit * s["clouds"] * sc * mask, phase, self._omega(0.2), 0.5)
            )

        self.sweep = s.get("light-sweep", 0.0)
        if self.sweep:
            self.sweep_angle = math.radians(rng.uniform(15.0, 35.0))
            self.sweep_gloss = sample("gloss")
        self._white: np.ndarray | None = None  # the sweep's light, made once
        self.fog = s.get("fog", 0.0)
        if self.fog:
            self.fog_cells = 10
            cw, ch = self._fog_size()
            pad = 16
            self.fog_tex = [
                smooth_noise(rng, (ch + 2 * pad, cw + 2 * pad), 6 + 3 * k) for k in range(2)
            ]
            self.fog_pad = pad
            self.fog_vel = [
                (rng.uniform(0.6, 1.2) * (1 - 2 * (rng.random() < 0.5)), rng.uniform(-0.2, 0.2))
                for _ in range(2)
            ]
            farness = np.clip(1.15 - fog_depth, 0.0, 1.0)
            small = cv2.resize(farness.astype(np.float32), (cw, ch), interpolation=cv2.INTER_AREA)
            self.fog_weight = (0.55 * self.fog * small).astype(np.float32)
            self.fog_colour = np.ascontiguousarray(
                np.broadcast_to(fog_colour.astype(np.uint8), (height, width, 3))
            )
        self.buf = (
            np.empty(shape, np.float32) if (self.waves or self.cloud_field is not None) else None
        )

    def _omega(self, freq: float, scale: float = 1.0) -> float:
        """Angular frequency for freq * scale Hz; in a loop, the nearest whole number of
        cycles per loop."""
        if self.periodic:
            return 2 * math.pi * max(1, round(freq * scale * self.period)) / self.period
        return 2 * math.pi * freq * scale

    def _loop_weight(self, i: int) -> float:
        """How much of a drifting effect comes from one loop earlier: 0 at the loop's first
        frame, rising evenly to 1 at the frame after its last, which is the first again."""
        return i / max(self.frames, 1) if self.periodic else 0.0

    def _fog_size(self) -> tuple[int, int]:
        cw = max(4, self.width // 8)
        ch = max(4, self.height // 8)
        return cw, ch

    @property
    def displaces(self) -> bool:
        return self.buf is not None

    @property
    def drifts_back(self) -> bool:
        """True when frames also need the sky as it was one loop earlier (see drift_back)."""
        return self.periodic and self.cloud_field is not None

    def displace(self, i: int, mx: np.ndarray, my: np.ndarray) -> None:
        """Add this frame's ambient displacement (working px) to the background maps."""
        t = i / self.fps
        for wave in self.waves:
            wave.add(t, mx, my, self.buf)
        if self.cloud_field is not None:
            cv2.scaleAdd(self.cloud_field, self.cloud_speed * t, mx, dst=mx)

    def drift_back(self, i: int, mx: np.ndarray, out: np.ndarray) -> float:
        """For a seamless loop with clouds: fill out with the maps mx as they were one loop
        earlier (the sky drifted one period less) and return how much of frame i to take
        from that earlier sky; 0 (out untouched) when nothing needs it.

        The drift d(t) is linear, so (1 - w) S(d(t)) + w S(d(t) - d(P)) with w = t / P is
        S(0) at t = 0 and at t = P: the sky slides on all the time and is back at its start.
        """
        w = self._loop_weight(i)
        if not self.drifts_back or w <= 0.0:
            return 0.0
        cv2.scaleAdd(self.cloud_field, -self.cloud_speed * self.period, mx, dst=out)
        return w

    def shade(
        self,
        i: int,
        frame: np.ndarray,
        roi: tuple[int, int, int, int] | None,
        alpha: np.ndarray | None,
    ) -> np.ndarray:
        """Apply the colour effects (light sweep on the subject, fog over the scene).

        alpha is the subject layer's matte over roi this frame (uint8), or None."""
        if self.sweep:
            frame = self._light_sweep(i, frame, roi, alpha)
        if self.fog:
            frame = self._fog(i, frame)
        return frame

    def _light_sweep(self, i, frame, roi, alpha):
        if roi is None:
            x0, y0, x1, y1 = 0, 0, self.width, self.height
        else:
            x0, y0, x1, y1 = roi
        rw, rh = x1 - x0, y1 - y0
        if rw < 2 or rh < 2:
            return frame
        # In a loop the band runs on a circle: frame `frames` would show it where frame 0 does.
        p = i / max(self.frames if self.periodic else self.frames - 1, 1)
        p = p * p * (3 - 2 * p)
        sw, sh = max(2, rw // 4), max(2, rh // 4)
        ca, sa = math.cos(self.sweep_angle), math.sin(self.sweep_angle)
        u = (np.arange(sw, dtype=np.float32) / max(sw - 1, 1))[None, :]
        v = (np.arange(sh, dtype=np.float32) / max(sh - 1, 1))[:, None]
        q = (u * ca + v * sa * (rh / max(rw, 1))) / (ca + sa * rh / max(rw, 1))
        pos = -0.25 + 1.5 * p
        off = q - pos
        if self.periodic:
            # The band's path, -0.25 to 1.25, closes up: its tail leaves on one side as it
            # enters on the other (it is off the subject at both ends, so the wrap is unseen).
            off = (off + 0.75) % 1.5 - 0.75
        band = np.exp(-((off / 0.11) ** 2)).astype(np.float32)
        # Only where the band is: elsewhere it moves no pixel by half a level (k * 255 < 0.5,
        # gloss and matte being at most 1), so the frame is left as it is there.
        seen = band > 0.5 / (255.0 * max(1.0, 0.55 * self.sweep))
        rows, cols = np.nonzero(seen.any(axis=1))[0], np.nonzero(seen.any(axis=0))[0]
        if rows.size == 0:
            return frame
        fy, fx = rh / sh, rw / sw  # small cell -> px, and one cell more each side
        by0, by1 = max(0, int((rows[0] - 1) * fy)), min(rh, int(math.ceil((rows[-1] + 2) * fy)))
        bx0, bx1 = max(0, int((cols[0] - 1) * fx)), min(rw, int(math.ceil((cols[-1] + 2) * fx)))
        band = cv2.resize(band, (rw, rh), interpolation=cv2.INTER_LINEAR)[by0:by1, bx0:bx1]
        if alpha is not None:
            alpha = alpha[by0:by1, bx0:bx1]
        x0, y0, x1, y1 = x0 + bx0, y0 + by0, x0 + bx1, y0 + by1
        rh, rw = y1 - y0, x1 - x0
        k = band * self.sweep_gloss[y0:y1, x0:x1]
        if alpha is not None:
            k *= alpha
            k *= 1.0 / 255.0
        k *= 0.55 * self.sweep
        inv = 1.0 - k
        if self._white is None or self._white.shape[0] < rh or self._white.shape[1] < rw:
            self._white = np.full((self.height, self.width, 3), (255, 251, 242), np.uint8)
        white = self._white[:rh, :rw]  # made once
        patch = np.ascontiguousarray(frame[y0:y1, x0:x1])
        frame[y0:y1, x0:x1] = cv2.blendLinear(patch, white, inv, k)
        return frame

    def _fog_density(self, t: float) -> np.ndarray:
        cw, ch = self._fog_size()
        dens = np.zeros((ch, cw), np.float32)
        for k, (tex, (vx, vy)) in enumerate(zip(self.fog_tex, self.fog_vel, strict=True)):
            # Sub-pixel drift of a fixed noise texture: smooth in time by construction.
            sx = self.fog_pad + vx * t * (1 + 0.5 * k)
            sy = self.fog_pad + vy * t
            m = np.float32([[1, 0, sx], [0, 1, sy]])
            layer = cv2.warpAffine(
                tex,
                m,
                (cw, ch),
                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                borderMode=cv2.BORDER_REFLECT101,
            )
            cv2.scaleAdd(layer, 0.6 if k == 0 else 0.4, dens, dst=dens)
        return dens

    def _fog(self, i, frame):
        if self.periodic:
            # The loop starts half-way through the cross-fade: where one fog gives way to the
            # other its swirls are softest and slowest, the right place for the seam.
            i = (i + self.frames // 2) % max(self.frames, 1)
        t = i / self.fps
        dens = self._fog_density(t)
        w = self._loop_weight(i)
        if w > 0.0:
            # Cross-faded with the fog one loop earlier (cheap: the density is 1/8 size).
            dens = cv2.addWeighted(dens, 1.0 - w, self._fog_density(t - self.period), w, 0.0)
        dens = np.clip(dens * 1.3 - 0.15, 0.0, 1.0) * self.fog_weight
        f = cv2.resize(dens, (self.width, self.height), interpolation=cv2.INTER_CUBIC)
        np.clip(f, 0.0, 1.0, out=f)
        return cv2.blendLinear(frame, self.fog_colour, 1.0 - f, f)
