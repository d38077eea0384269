"""Small living motions of a portrait's face and body (blinks, a head turn, breathing), from the face mesh.

Everything here moves the subject layer's source maps in working-image pixels: a smooth
field on a coarse grid over the head and body carries the head turn and the breathing, and
fades to zero into the neck, at the hair's and the body's outline and away from the
person, so the layer bends without tearing and the person stays the same person. A blink
is a jump in the map (the open eye disappears), so it is worked out at each output pixel
near the eyes instead of on a grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from studio.motion import reach
from studio.motion.ambient import strengths
from studio.motion.filters import push_pull_fill
from studio.motion.scene import Scene
from studio.plan import VariantPlan
from studio.vision import MESH_NOSE_TIP, MESH_NUM_POINTS

# MediaPipe face-mesh indices. Each eye: outer corner, inner corner, upper lid (outer to
# inner), lower lid (outer to inner), lower edge of the eyebrow above it.
EYES = (
    (33, 133, (246, 161, 160, 159, 158, 157, 173), (7, 163, 144, 145, 153, 154, 155),
     (46, 53, 52, 65, 55)),
    (263, 362, (466, 388, 387, 386, 385, 384, 398), (249, 390, 373, 374, 380, 381, 382),
     (276, 283, 282, 295, 285)),
)  # fmt: skip
FOREHEAD_TOP, CHIN = 10, 152
CHEEKS = (234, 454)  # the face outline at the ears

# Seeds: np.random.default_rng([plan.seed, constant]) for each motion, so adding one motion
# to a preset does not move the others.
BLINK_SEED = 0xB1
HEAD_SEED = 0x4E

# Blinks: the lid closes fast, rests a moment and opens slower (about 200 ms in all).
BLINK_CLOSE_S = 0.07
BLINK_HOLD_S = 0.02
BLINK_OPEN_S = 0.11
BLINK_GAP_S = (2.0, 5.0)  # between blinks
BLINK_FIRST_S = (0.3, 2.0)
# Where the lids meet, as a share of the opening from the upper lid: the upper lid does
# most of the travel, the lower one rises a little.
BLINK_MEET = 0.8
# The mesh's lid contours sit a little inside the visible opening: widen it by these shares
# of the opening (upper, lower) and past the corners by a share of the eye's width, so no
# white of the eye is left showing under a closed lid.
BLINK_MARGIN = (0.12, 0.25)
BLINK_CORNER = 0.06
# The lash line along the upper lid's edge, as a share of the opening: it moves down whole.
BLINK_LASH = 0.35
# An eye seen this obliquely (its 2D width over its 3D width) is too foreshortened to blink.
EYE_MIN_FACING = 0.6

HEAD_TURN_DEG = 4.0  # largest yaw/pitch at strength 1
HEAD_CYCLE_S = 4.5  # one turn out and back takes about this long
# The head turns about a point this far (share of the face width) behind the cheeks.
HEAD_PIVOT_BACK = 0.25

BREATH_LIFT = 0.05  # shoulder lift at strength 1, as a share of the face height
BREATH_WIDEN = 0.25  # sideways spread at the body's sides, as a share of the lift
BREATH_PERIOD = 3.6  # seconds

# How far the head's motion reaches beyond the face mesh (shares of the face height):
# far into the hair above, less to the sides, a little into the neck below.
REACH_UP, REACH_DOWN = 0.5, 0.2
# Fade to zero over this distance (share of the face height) inside the subject's outline.
HEAD_EDGE_FADE = 0.06
BODY_EDGE_FADE = 0.12
# The coarse grid: about this many cells across a face, at most this many along the region.
CELLS_PER_FACE = 24
MAX_CELLS = 256
# Finding where a frame reads the fields is done on every this many output px.
WINDOW_STEP = 4


def _smoothstep(x: np.ndarray) -> np.ndarray:
    t = np.clip(x, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def blink_times(
    seed: int, duration: float, spacing: float = 1.0
) -> list[tuple[float, float, float, float]]:
    """Seeded blinks inside [0, duration] s: (peak, close, hold, open) in seconds, never cut.

    The lid is fully closed from peak to peak + hold; a caller snaps peak to a frame.
    spacing stretches the gaps between blinks (the first one comes at the same time).
    """
    rng = np.random.default_rng([seed, BLINK_SEED])
    out = []
    t = rng.uniform(*BLINK_FIRST_S)
    first = True
    while True:
        k = rng.uniform(0.85, 1.2)
        close, hold, open_ = BLINK_CLOSE_S * k, BLINK_HOLD_S * k, BLINK_OPEN_S * k
        if first and t + hold + open_ > duration:
            # A short clip still gets its one blink if it fits anywhere.
            t = duration - hold - open_
        if t - close < 0.0 or t + hold + open_ > duration:
            break
        out.append((t, close, hold, open_))
        t += rng.uniform(*BLINK_GAP_S) * spacing
        first = False
    return out


def closure_curve(blinks, frames: int, fps: float) -> np.ndarray:
    """Per-frame lid closure in [0, 1], each blink's peak moved to a frame inside the clip."""
    t = np.arange(frames, dtype=np.float64) / fps
    c = np.zeros(frames)
    end = (frames - 1) / fps
    for peak, close, hold, open_ in blinks:
        peak = round(peak * fps) / fps
        if peak + hold + open_ > end + 1e-9:
            peak = math.floor((end - hold - open_) * fps + 1e-9) / fps
        if peak - close < -1e-9:
            continue  # the clip is too short for this blink
        down = _smoothstep((t - (peak - close)) / close)
        up = 1.0 - _smoothstep((t - (peak + hold)) / open_)
        c = np.maximum(c, np.where(t <= peak, down, np.where(t <= peak + hold, 1.0, up)))
    c[c < 1e-3] = 0.0
    return c


def _loop_blinks(blinks, period: float, spacing: float = 1.0):
    """The blinks of a loop `period` s long: a late blink that would come too soon before
    the first one of the next time round is left out (the first is always kept)."""
    if not blinks:
        return blinks
    wrap = blinks[0][0] + period
    return [blinks[0]] + [b for b in blinks[1:] if wrap - b[0] >= BLINK_GAP_S[0] * spacing]


@dataclass(frozen=True)
class _Eye:
    """One eye that can blink: its own frame and its lids as tables along the eye.

    u runs along the eye (corner to corner), v across it, down the face; upper and lower
    are the lids' v at each u of the table, above and below how far the lid skin and the
    cheek that move with the blink reach beyond them.
    """

    origin: np.ndarray
    e: np.ndarray  # unit vector along the eye, left to right in the image
    n: np.ndarray  # unit vector across it, pointing down the face
    u: np.ndarray
    upper: np.ndarray
    lower: np.ndarray
    above: np.ndarray
    below: np.ndarray
    box: tuple[float, float, float, float]  # working px that can move: x0, y0, x1, y1


class LifeRig:
    """Per-plan face and body motion, applied to the subject layer's source maps.

    displace(i, mx, my) moves, in place, the working-image positions (mx, my) the subject
    layer samples for frame i, so the face and shoulders move with the layer and the camera.
    """

    def __init__(self, scene: Scene, plan: VariantPlan) -> None:
        """In a seamless loop (plan.periodic) every motion repeats after plan.frames frames:
        the head turns and the chest breathes a whole number of times per loop, and the
        blinks, which always end inside the clip, keep their natural gap across the seam."""
        self.scene = scene
        self.plan = plan
        frames = max(int(plan.frames), 1)
        fps = max(float(plan.fps), 1e-3)
        s = strengths(plan.ambient)
        meshes = [
            np.asarray(m, np.float64)
            for m in scene.landmarks
            if m is not None and np.shape(m) == (MESH_NUM_POINTS, 3) and np.isfinite(m).all()
        ]
        self.closure = np.zeros(frames)
        self.yaw = np.zeros(frames)
        self.pitch = np.zeros(frames)
        self.breath = np.zeros(frames)
        self._grid = None
        self._support: tuple[float, float, float, float] | None = None
        self._eyes: list[_Eye] = []
        if not meshes or not scene.has_subject:
            return
        duration = (frames - 1) / fps
        t = np.arange(frames) / fps
        # The head turn and breath fit this span: to the last frame, or in a loop to the
        # frame after it, which is the first again.
        span = frames / fps if plan.periodic else duration

        # 1. When things happen: blink closure, head angles and breath, per frame.
        if s.get("blink"):
            # A blink always closes the eye; a weaker one only comes less often.
            blinks = blink_times(plan.seed, duration, 1.0 / s["blink"])
            if plan.periodic:
                blinks = _loop_blinks(blinks, frames / fps, 1.0 / s["blink"])
            self.closure = closure_curve(blinks, frames, fps)
        if s.get("head-turn"):
            rng = np.random.default_rng([plan.seed, HEAD_SEED])
            amp = math.radians(HEAD_TURN_DEG) * s["head-turn"]
            angle = math.radians(rng.uniform(-35.0, 35.0))
            side = 1.0 if rng.random() < 0.5 else -1.0
            cycles = max(1, round(span / HEAD_CYCLE_S))
            shape = np.sin(math.pi * t * cycles / max(span, 1e-3)) ** 2
            self.yaw = side * amp * math.cos(angle) * shape
            self.pitch = 0.7 * amp * math.sin(angle) * shape
        if s.get("breathing"):
            period = BREATH_PERIOD
            if plan.periodic:
                period = span / max(1, round(span / BREATH_PERIOD))
            self.breath = s["breathing"] * (0.5 - 0.5 * np.cos(2.0 * math.pi * t / period))

        # 2. Where: the coarse head and body fields, and each face's eyes.
        if np.any(self.yaw) or np.any(self.pitch) or np.any(self.breath):
            self._grid = self._coarse_fields(meshes)
            self._support = self._field_support()
        if np.any(self.closure):
            self._eyes = [eye for m in meshes for eye in _eyes(m)]
            if not self._eyes:
                self.closure[:] = 0.0

    @property
    def displaces(self) -> bool:
        return self._grid is not None or bool(self._eyes)

    # -- building the fields -----------------------------------------------------------------

    def _coarse_fields(self, meshes: list[np.ndarray]):
        """Head relief (px of sideways travel per radian of yaw) and breath lift on one grid."""
        scene = self.scene
        hi, wi = scene.alpha.shape
        sizes = [_face_size(m) for m in meshes]
        bx0, by0, bx1, by1 = scene.subject_box
        x0, y0, x1, y1 = float(bx0), float(by0), float(bx1), float(by1)
        for m, (fw, fh) in zip(meshes, sizes, strict=True):
            x0 = min(x0, m[:, 0].min() - fw)
            x1 = max(x1, m[:, 0].max() + fw)
            y0 = min(y0, m[:, 1].min() - REACH_UP * 1.5 * fh)
            y1 = max(y1, m[:, 1].max() + fh)
        x0, y0 = max(0.0, math.floor(x0)), max(0.0, math.floor(y0))
        x1, y1 = min(float(wi - 1), math.ceil(x1)), min(float(hi - 1), math.ceil(y1))
        step = max(
            2.0, min(fw for fw, _ in sizes) / CELLS_PER_FACE, max(x1 - x0, y1 - y0) / MAX_CELLS
        )
        gw, gh = int(math.ceil((x1 - x0) / step)) + 1, int(math.ceil((y1 - y0) / step)) + 1
        gx = (x0 + step * np.arange(gw))[None, :]
        gy = (y0 + step * np.arange(gh))[:, None]
        ix = np.clip(np.round(gx).astype(int), 0, wi - 1)[0]
        iy = np.clip(np.round(gy).astype(int), 0, hi - 1)[:, 0]
        alpha = cv2.GaussianBlur(scene.alpha, (0, 0), max(0.5, 0.5 * step))[np.ix_(iy, ix)]
        # Depth inside the outline, less the cell or so the grid's interpolation spreads.
        inside = cv2.distanceTransform((alpha > 0.5).astype(np.uint8), cv2.DIST_L2, 5) * step
        inside = inside - 1.5 * step

        head = np.zeros((gh, gw), np.float32)
        lift = np.zeros((gh, gw), np.float32)
        widen = np.zeros((gh, gw), np.float32)
        for m, (fw, fh) in zip(meshes, sizes, strict=True):
            relief, near = _head_relief(m, fw, fh, x0, y0, step, (gh, gw), gx, gy)
            head += relief * near * _smoothstep(inside / (HEAD_EDGE_FADE * fh))
            # Breath lifts what lies below the face, away from the head and neck, and not at
            # the photo's bottom edge (whatever is cut off there would be stretched in).
            chin_y = m[CHIN, 1]
            cx = 0.5 * (m[CHEEKS[0], 0] + m[CHEEKS[1], 0])
            body = _smoothstep((gy - (chin_y - 0.1 * fh)) / (0.7 * fh))
            body = body * (1.0 - near) * _smoothstep((hi - 1 - gy) / (0.4 * fh))
            body = body * (1.0 - _smoothstep((np.abs(gx - cx) - 1.5 * fw) / (1.5 * fw)))
            body = body * _smoothstep(inside / (BODY_EDGE_FADE * fh))
            amount = BREATH_LIFT * fh
            lift -= (amount * body).astype(np.float32)
            spread = np.clip((gx - cx) / (1.5 * fw), -1.0, 1.0)
            widen += (BREATH_WIDEN * amount * spread * body).astype(np.float32)
        return x0, y0, step, head, lift, widen

    def _field_support(self) -> tuple[float, float, float, float] | None:
        """Working px (x0, y0, x1, y1) outside which every field this plan uses is zero.

        Reads there (bilinear, one cell further) give exactly nothing, so each frame reads
        the field only where the output samples this box: a breath moves the shoulders, not
        the whole frame.
        """
        x0, y0, step, head, lift, widen = self._grid
        used = np.zeros(head.shape, bool)
        if np.any(self.yaw) or np.any(self.pitch):
            used |= head != 0
        if np.any(self.breath):
            used |= (lift != 0) | (widen != 0)
        rows, cols = np.nonzero(used.any(axis=1))[0], np.nonzero(used.any(axis=0))[0]
        if rows.size == 0:
            return None
        return (
            x0 + step * (cols[0] - 1),
            y0 + step * (rows[0] - 1),
            x0 + step * (cols[-1] + 1),
            y0 + step * (rows[-1] + 1),
        )

    # -- per frame ---------------------------------------------------------------------------

    def displace(self, i: int, mx: np.ndarray, my: np.ndarray) -> None:
        """Move the working-image positions (mx, my) the subject layer samples for frame i."""
        if self._support is not None and (self.yaw[i] or self.pitch[i] or self.breath[i]):
            x0, y0, step, head, lift, widen = self._grid
            b = float(self.breath[i])
            fx = float(self.yaw[i]) * head + b * widen
            fy = float(self.pitch[i]) * head + b * lift
            window = reach.window(mx, my, self._support, WINDOW_STEP)
            if window is not None:
                _pull(cv2.merge([fx, fy]), x0, y0, step, mx[window], my[window])
        c = float(self.closure[i])
        if c > 0.0:
            for eye in self._eyes:
                _blink(eye, c, mx, my)


def _pull(field: np.ndarray, x0: float, y0: float, step: float, mx, my) -> None:
    """Inverse warp: read the 2-channel field (working px, on a grid) at (mx, my), subtract."""
    inv = 1.0 / step
    gx = mx * np.float32(inv) - np.float32(x0 * inv)
    gy = my * np.float32(inv) - np.float32(y0 * inv)
    d = cv2.remap(
        field.astype(np.float32), gx, gy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )
    mx -= d[..., 0]
    my -= d[..., 1]


def _eyes(m: np.ndarray) -> list[_Eye]:
    """The face's open eyes that face the camera enough to blink convincingly."""
    eyes = []
    for outer, inner, upper, lower, brow in EYES:
        a, b = m[outer], m[inner]
        width2 = float(np.hypot(*(b[:2] - a[:2])))
        width3 = float(np.linalg.norm(b - a))
        if width3 < 1e-6 or width2 / width3 < EYE_MIN_FACING:
            continue
        e = (b[:2] - a[:2]) / width2
        if e[0] < 0:
            e = -e
        n = np.array([-e[1], e[0]])
        if n[1] < 0:
            n = -n
        o = 0.5 * (a[:2] + b[:2])
        reach = BLINK_CORNER * width2 * np.sign((b[:2] - a[:2]) @ e) * e
        ends = (m[outer, :2] - reach, m[inner, :2] + reach)

        def curve(pts, o=o, e=e, n=n):
            pu, pv = (pts - o) @ e, (pts - o) @ n
            order = np.argsort(pu)
            return pu[order], pv[order]

        up_u, up_v = curve(np.array([ends[0], *m[list(upper), :2], ends[1]]))
        lo_u, lo_v = curve(np.array([ends[0], *m[list(lower), :2], ends[1]]))
        brow_u, brow_v = curve(m[list(brow), :2])
        u = np.linspace(up_u[0], up_u[-1], 65)
        upper_v, lower_v = np.interp(u, up_u, up_v), np.interp(u, lo_u, lo_v)
        lid = np.maximum(lower_v - upper_v, 0.0)
        gap = float(lid.max())
        if gap < 1.0:
            continue  # a closed or squinting eye has nothing to close
        upper_v, lower_v = upper_v - BLINK_MARGIN[0] * lid, lower_v + BLINK_MARGIN[1] * lid
        lid = lower_v - upper_v
        # The lid skin that slides down reaches towards the brow, never into it.
        room = np.maximum(upper_v - np.interp(u, brow_u, brow_v), 0.0)
        above = np.maximum(np.minimum(1.2 * lid + 0.5 * gap, 0.85 * room), 0.5 * lid + 1e-3)
        below = 0.5 * lid + 0.4 * gap
        corners = [o + uu * e + vv * n for uu in (u[0], u[-1])
                   for vv in (float((upper_v - above).min()), float((lower_v + below).max()))]  # fmt: skip
        lo_xy, hi_xy = np.min(corners, 0) - 1.0, np.max(corners, 0) + 1.0
        box = (float(lo_xy[0]), float(lo_xy[1]), float(hi_xy[0]), float(hi_xy[1]))
        eyes.append(_Eye(o, e, n, u, upper_v, lower_v, above, below, box))
    return eyes


def _blink(eye: _Eye, c: float, mx: np.ndarray, my: np.ndarray) -> None:
    """Close one eye by c in [0, 1]: a monotonic remap of each column across the eye.

    Evaluated at every output pixel (not on a grid), because a closed eye is a jump in the
    map: the lid skin above the upper lid stretches down to the meeting line, the lash line
    slides down whole (stretching it would smear it), the open eye between the lids is
    squeezed to nothing and the lower lid rises a little. Nothing folds, so the closed eye
    shows skin and the lash line, never a smear.
    """
    x0, y0, x1, y1 = eye.box
    near = (mx > x0) & (mx < x1) & (my > y0) & (my < y1)
    rows, cols = np.flatnonzero(near.any(axis=1)), np.flatnonzero(near.any(axis=0))
    if rows.size == 0:
        return
    win = np.s_[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    dx, dy = mx[win] - eye.origin[0], my[win] - eye.origin[1]
    u = dx * eye.e[0] + dy * eye.e[1]
    v = dx * eye.n[0] + dy * eye.n[1]
    inside = (u > eye.u[0]) & (u < eye.u[-1])
    up, lo = np.interp(u, eye.u, eye.upper), np.interp(u, eye.u, eye.lower)
    above, below = np.interp(u, eye.u, eye.above), np.interp(u, eye.u, eye.below)
    lid = np.maximum(lo - up, 0.0)
    up2 = up + c * BLINK_MEET * lid
    lo2 = lo - c * (1.0 - BLINK_MEET) * lid
    lash = BLINK_LASH * lid
    # Knots of each column's map, top to bottom: where they are drawn, and read from.
    drawn = (up - above, up2 - lash, up2, lo2, lo + below)
    read = (up - above, up - lash, up, lo, lo + below)
    src = v.copy()
    for k in range(4):
        seg = inside & (v >= drawn[k]) & (v < drawn[k + 1])
        span = np.maximum(drawn[k + 1] - drawn[k], 1e-6)
        src[seg] = (read[k] + (v - drawn[k]) * (read[k + 1] - read[k]) / span)[seg]
    shift = (v - src).astype(np.float32)
    mx[win] -= shift * np.float32(eye.n[0])
    my[win] -= shift * np.float32(eye.n[1])


def _face_size(m: np.ndarray) -> tuple[float, float]:
    """Face width (3D, at the cheeks, so a face in profile is not thin) and height (2D), px."""
    fw = float(np.linalg.norm(m[CHEEKS[1]] - m[CHEEKS[0]]))
    fh = float(np.hypot(*(m[CHIN, :2] - m[FOREHEAD_TOP, :2])))
    return max(fw, 1.0), max(fh, 1.0)


def _head_relief(m, fw, fh, x0, y0, step, shape, gx, gy):
    """How far in front of the head's pivot each grid node is (px), and how much it belongs
    to the head (1 on the face, fading into the hair, the ears and the neck).

    A small rotation moves a point sideways by its distance in front of the pivot times the
    yaw (and down by the same times the pitch), so this one relief map serves both.
    """
    gh, gw = shape
    # The pivot sits behind the cheeks, along the face's forward direction.
    mid = 0.5 * (m[CHEEKS[0]] + m[CHEEKS[1]])
    forward = m[MESH_NOSE_TIP] - mid
    forward /= max(float(np.linalg.norm(forward)), 1e-6)
    pivot_z = mid[2] - HEAD_PIVOT_BACK * fw * forward[2]
    relief = np.maximum(pivot_z - m[:, 2], 0.0)

    # Splat the mesh's relief onto the grid and fill between and beyond the points smoothly.
    px, py = (m[:, 0] - x0) / step, (m[:, 1] - y0) / step
    val = np.zeros(shape, np.float64)
    wgt = np.zeros(shape, np.float64)
    jx, jy = np.floor(px).astype(int), np.floor(py).astype(int)
    fx, fy = px - jx, py - jy
    for ox, oy, w in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)),
                      (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):  # fmt: skip
        cx, cy = jx + ox, jy + oy
        ok = (cx >= 0) & (cx < gw) & (cy >= 0) & (cy < gh)
        np.add.at(val, (cy[ok], cx[ok]), (w * relief)[ok])
        np.add.at(wgt, (cy[ok], cx[ok]), w[ok])
    known = np.clip(wgt, 0.0, 1.0)
    mean = np.where(wgt > 1e-9, val / np.maximum(wgt, 1e-9), 0.0)
    filled = push_pull_fill(mean.astype(np.float32), known.astype(np.float32))
    filled = cv2.GaussianBlur(filled, (0, 0), 1.0)

    # Belonging to the head: 1 inside the face's outline, then fading with the distance from
    # it, slowly upwards (hair), faster sideways and fastest into the neck.
    hull = cv2.convexHull(np.round(np.column_stack([px, py]) * 16).astype(np.int32))
    face = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(face, hull, 1, cv2.LINE_AA, 4)
    dist = cv2.distanceTransform((face == 0).astype(np.uint8), cv2.DIST_L2, 3) * step
    up = m[FOREHEAD_TOP, :2] - m[CHIN, :2]
    up /= max(float(np.hypot(*up)), 1e-6)
    centre = 0.5 * (m[FOREHEAD_TOP, :2] + m[CHIN, :2])
    height = ((gx - centre[0]) * up[0] + (gy - centre[1]) * up[1]) / (0.5 * fh)
    reach = np.interp(height, (-1.0, 0.3), (REACH_DOWN * fh, REACH_UP * fh))
    near = 1.0 - _smoothstep(dist / reach)
    return filled.astype(np.float32), near.astype(np.float32)
