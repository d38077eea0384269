"""Layered depth-parallax rendering of one plan: framing, overscan fitting and per-frame remaps."""

from __future__ import annotations

import math
from collections.abc import Iterator

import cv2
import numpy as np

from studio.motion import reach
from studio.motion.ambient import AmbientRig, check_kinds, displacement_margin
from studio.motion.camera import CameraPath, camera_path
from studio.motion.framing import framing_for, place
from studio.motion.life import LifeRig
from studio.motion.scene import Scene
from studio.plan import VariantPlan

# Keep every bilinear tap at least this far inside the working image (working px).
SAFETY = 1.0
REPORT_EVERY = 4
# Where the subject layer lands in a frame is found on every this many output px.
LAYER_STEP = 4


def _excursion(
    path: CameraPath, x: np.ndarray, y: np.ndarray, w_ranges, roll_extra: float
) -> tuple[float, float, float, float]:
    """Extremes of (source - centre) / sc over every frame, pixel and parallax weight.

    The maps are linear in the weight w, so checking both ends of each layer's w range
    bounds every pixel exactly, without building a single map.
    """
    z = path.zoom[:, None]
    cos, sin = np.cos(path.roll)[:, None], np.sin(path.roll)[:, None]
    ax = x[None, :] * cos / z + path.cx[:, None]
    bx = -(x[None, :] * path.dolly[:, None] / z + path.px[:, None])
    ay = y[None, :] * cos / z + path.cy[:, None]
    by = -(y[None, :] * path.dolly[:, None] / z + path.py[:, None])
    rx = (np.abs(sin) / z).max() * float(np.abs(y).max()) + roll_extra
    ry = (np.abs(sin) / z).max() * float(np.abs(x).max()) + roll_extra
    xs_hi, xs_lo, ys_hi, ys_lo = [], [], [], []
    for lo, hi in w_ranges:
        xs_hi.append(np.maximum(ax + lo * bx, ax + hi * bx).max())
        xs_lo.append(np.minimum(ax + lo * bx, ax + hi * bx).min())
        ys_hi.append(np.maximum(ay + lo * by, ay + hi * by).max())
        ys_lo.append(np.minimum(ay + lo * by, ay + hi * by).min())
    return min(xs_lo) - rx, max(xs_hi) + rx, min(ys_lo) - ry, max(ys_hi) + ry


class PlanRig:
    """Everything precomputed for one plan; frame(i) renders frame i (thread-safe per rig)."""

    def __init__(self, scene: Scene, plan: VariantPlan) -> None:
        check_kinds(plan.ambient)
        self.scene = scene
        self.plan = plan
        W, H, F = int(plan.width), int(plan.height), max(int(plan.frames), 1)
        self.W, self.H, self.F = W, H, F
        hi_, wi_ = scene.image.shape[:2]
        unit = math.sqrt(W * H)
        rng = np.random.default_rng(plan.seed)
        self.x = np.arange(W, dtype=np.float64) + 0.5 - W / 2.0
        self.y = np.arange(H, dtype=np.float64) + 0.5 - H / 2.0

        cam = plan.camera
        # Where the frame sits: on a face, a subject, a pinned point or the plan's focus.
        self.framing = framing_for(scene, plan)
        self.d_ref = scene.subject_depth
        layered = scene.has_subject
        self.layered = layered
        bg_depth = scene.depth_bg if layered else scene.depth
        w_ranges = [(float(bg_depth.min()) - self.d_ref, float(bg_depth.max()) - self.d_ref)]
        if layered:
            a = scene.layer[..., 3] > 0
            fd = scene.depth_fg[a] if a.any() else scene.depth_fg
            w_ranges.append((float(fd.min()) - self.d_ref, float(fd.max()) - self.d_ref))
        margin = displacement_margin(plan.ambient, unit, F / max(plan.fps, 1e-3))

        path_rng_state = rng.bit_generator.state
        focus_offset = (0.0, 0.0)
        for _ in range(2):
            # Pushes zoom about the push point's screen position, which depends on the fit.
            rng.bit_generator.state = path_rng_state
            path = camera_path(cam, F, plan.fps, W, H, rng, focus_offset, plan.periodic)
            xlo, xhi, ylo, yhi = _excursion(path, self.x, self.y, w_ranges, margin)
            xlo -= margin
            xhi += margin
            ylo -= margin
            yhi += margin
            sc = min((wi_ - 1 - 2 * SAFETY) / (xhi - xlo), (hi_ - 1 - 2 * SAFETY) / (yhi - ylo))
            # The frame centres that keep every sample of every frame on the photo.
            bounds = (
                (SAFETY - sc * xlo, wi_ - 1 - SAFETY - sc * xhi),
                (SAFETY - sc * ylo, hi_ - 1 - SAFETY - sc * yhi),
            )
            x0, y0, self.aims_used = place(self.framing, path, sc, (W, H), bounds)
            push = self.framing.push_for(self.aims_used)
            focus_offset = ((push[0] - x0) / sc, (push[1] - y0) / sc)
        self.path, self.sc, self.X0, self.Y0 = path, sc, x0, y0

        # Parallax weights sampled once on the output grid through the mid-clip camera.
        mid = F // 2
        ref_x = (self.X0 + sc * (self.x / path.zoom[mid] + path.cx[mid])).astype(np.float32)
        ref_y = (self.Y0 + sc * (self.y / path.zoom[mid] + path.cy[mid])).astype(np.float32)
        self.ref_mx = np.ascontiguousarray(np.broadcast_to(ref_x[None, :], (H, W)))
        self.ref_my = np.ascontiguousarray(np.broadcast_to(ref_y[:, None], (H, W)))
        self.w_bg = self._sample(bg_depth) - np.float32(self.d_ref)
        self.static = bool(
            np.all(path.dolly == 0) and np.all(path.px == 0) and np.all(path.py == 0)
        )
        self.rotates = bool(np.any(path.roll != 0))
        self.mx = np.empty((H, W), np.float32)
        self.my = np.empty((H, W), np.float32)
        self._bg = _Grid(self.x, self.y, self.w_bg)

        self.roi = None
        if layered:
            self.roi = self._subject_roi(w_ranges[1])
        if self.roi is not None:
            x0r, y0r, x1r, y1r = self.roi
            self.w_fg = np.ascontiguousarray(
                self._sample(scene.depth_fg)[y0r:y1r, x0r:x1r] - np.float32(self.d_ref)
            )
            self.fmx = np.empty((y1r - y0r, x1r - x0r), np.float32)
            self.fmy = np.empty_like(self.fmx)
            self._fg = _Grid(self.x[x0r:x1r], self.y[y0r:y1r], self.w_fg)
            # The same maps on every LAYER_STEP-th pixel, to find where the layer lands.
            k = LAYER_STEP
            self._fg_sparse = _Grid(
                self.x[x0r:x1r:k], self.y[y0r:y1r:k], np.ascontiguousarray(self.w_fg[::k, ::k])
            )
            self.smx = np.empty(self._fg_sparse.x.shape, np.float32)
            self.smy = np.empty_like(self.smx)
            self.layer_reach = _reads_layer(scene.layer_box, scene.layer.shape)
            # The part of the roi (rows, columns) the last frame laid the layer in: fmx and
            # fmy hold that frame's maps there, and only there.
            self.layer_window: tuple[slice, slice] | None = None
            self.life = LifeRig(scene, plan)

        mean_top = scene.image[: max(1, scene.image.shape[0] // 3)].reshape(-1, 3).mean(axis=0)
        fog_colour = np.clip(0.45 * mean_top + 0.55 * np.array([222, 226, 232]), 0, 255)
        self.ambient = AmbientRig(
            plan.ambient,
            rng,
            W,
            H,
            plan.fps,
            F,
            sc,
            lambda name: self._sample(getattr(scene, name)),
            self._sample(bg_depth),
            fog_colour,
            plan.periodic,
        )
        # The light sweep shades by the matte over the whole roi.
        sweeps = self.roi is not None and bool(self.ambient.sweep)
        self.roi_matte = np.zeros(self.fmx.shape, np.uint8) if sweeps else None
        # The sky's maps one loop earlier, for clouds in a seamless loop.
        self.back_mx = np.empty((H, W), np.float32) if self.ambient.drifts_back else None

    def _sample(self, field: np.ndarray) -> np.ndarray:
        return cv2.remap(
            field, self.ref_mx, self.ref_my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )

    def _subject_roi(self, w_range: tuple[float, float]) -> tuple[int, int, int, int] | None:
        """Output rectangle the subject layer can touch in any frame (its bbox, forward-mapped)."""
        bx0, by0, bx1, by1 = self.scene.layer_box
        if bx1 <= bx0 or by1 <= by0:
            return None
        p = self.path
        xs, ys = [], []
        for w in w_range:
            scale = p.zoom / np.maximum(1.0 - w * p.dolly, 0.2)
            for sx in (bx0 - 2, bx1 + 2):
                xs.append(((sx - self.X0) / self.sc - p.cx + w * p.px) * scale)
            for sy in (by0 - 2, by1 + 2):
                ys.append(((sy - self.Y0) / self.sc - p.cy + w * p.py) * scale)
        grow = 4.0
        grow += float(np.abs(p.roll).max()) * max(self.W, self.H)
        x0 = int(math.floor(min(a.min() for a in xs) + self.W / 2 - grow))
        x1 = int(math.ceil(max(a.max() for a in xs) + self.W / 2 + grow))
        y0 = int(math.floor(min(a.min() for a in ys) + self.H / 2 - grow))
        y1 = int(math.ceil(max(a.max() for a in ys) + self.H / 2 + grow))
        x0, y0 = max(0, x0), max(0, y0)
        x1, y1 = min(self.W, x1), min(self.H, y1)
        if x1 - x0 < 1 or y1 - y0 < 1:
            return None
        return x0, y0, x1, y1

    def _maps(
        self,
        i: int,
        x: np.ndarray,
        y: np.ndarray,
        w: np.ndarray,
        mx: np.ndarray,
        my: np.ndarray,
        grid: _Grid | None = None,
    ) -> None:
        """Fill mx, my (float32) for frame i over the grid x (columns) by y (rows).

        mx = X0 + sc (x cos / z + cx) - w sc (x d / z + px) - sc y sin / z, and my alike: with
        grid (the same x, y and w, with their products made once), in two OpenCV passes a map
        instead of NumPy's broadcasts, the same to a ten-thousandth of a pixel.
        """
        p, sc = self.path, self.sc
        z, d = p.zoom[i], p.dolly[i]
        cos, sin = math.cos(p.roll[i]), math.sin(p.roll[i])
        if grid is not None and not self.static:
            a = -sc * d / z  # the parallax term's slope, and its offsets
            r = sc * sin / z
            cv2.addWeighted(grid.wx, a, w, -sc * p.px[i], self.X0 + sc * p.cx[i], dst=mx)
            cv2.scaleAdd(grid.x, sc * cos / z, mx, dst=mx)
            cv2.addWeighted(grid.wy, a, w, -sc * p.py[i], self.Y0 + sc * p.cy[i], dst=my)
            cv2.scaleAdd(grid.y, sc * cos / z, my, dst=my)
            if self.rotates:
                cv2.scaleAdd(grid.y, -r, mx, dst=mx)
                cv2.scaleAdd(grid.x, r, my, dst=my)
            return
        row_ax = (self.X0 + sc * (x * cos / z + p.cx[i])).astype(np.float32)
        col_ay = (self.Y0 + sc * (y * cos / z + p.cy[i])).astype(np.float32)[:, None]
        if self.static:
            mx[...] = row_ax
            my[...] = col_ay
        else:
            row_bx = (-sc * (x * d / z + p.px[i])).astype(np.float32)
            col_by = (-sc * (y * d / z + p.py[i])).astype(np.float32)[:, None]
            np.multiply(w, row_bx, out=mx)
            np.add(mx, row_ax, out=mx)
            np.multiply(w, col_by, out=my)
            np.add(my, col_ay, out=my)
        if self.rotates:
            np.add(mx, (-sc * y * sin / z).astype(np.float32)[:, None], out=mx)
            np.add(my, (sc * x * sin / z).astype(np.float32), out=my)

    def frame(
        self, i: int, mx: np.ndarray | None = None, my: np.ndarray | None = None
    ) -> np.ndarray:
        """Render frame i as RGB uint8 (H, W, 3)."""
        mx = self.mx if mx is None else mx
        my = self.my if my is None else my
        scene = self.scene
        self._maps(i, self.x, self.y, self.w_bg, mx, my, self._bg)
        if self.ambient.displaces:
            self.ambient.displace(i, mx, my)
        plate = scene.plate if self.layered else scene.image
        frame = cv2.remap(plate, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        if self.back_mx is not None:
            w = self.ambient.drift_back(i, mx, self.back_mx)
            if w > 0.0:
                back = cv2.remap(
                    plate, self.back_mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
                )
                frame = cv2.addWeighted(frame, 1.0 - w, back, w, 0.0)
        alpha = None
        if self.roi is not None:
            alpha = self._composite_subject(i, frame)
        return self.ambient.shade(i, frame, self.roi, alpha)

    def _composite_subject(self, i: int, frame: np.ndarray) -> np.ndarray | None:
        """Lay frame i's subject layer over frame, in place, only where the layer lands.

        Returns the matte over the roi (zero where the layer is clear) when the light sweep
        needs it, else None.
        """
        scene = self.scene
        x0, y0, x1, y1 = self.roi
        k = LAYER_STEP
        xs, ys = self.x[x0:x1:k], self.y[y0:y1:k]
        self._maps(i, xs, ys, self._fg_sparse.w, self.smx, self.smy, self._fg_sparse)
        # Only the pixels whose maps read the layer's box: elsewhere it is clear, and the
        # life motions leave the maps alone there (their fields are zero off the subject).
        win = reach.sampled_window(self.smx, self.smy, self.layer_reach, LAYER_STEP, self.fmx.shape)
        self.layer_window = win
        if self.roi_matte is not None:
            self.roi_matte[...] = 0
        if win is None:  # the layer is off the frame
            return self.roi_matte
        rows, cols = win
        fmx, fmy = self.fmx[win], self.fmy[win]
        self._maps(i, self.x[x0:x1][cols], self.y[y0:y1][rows], self.w_fg[win], fmx, fmy,
                   self._fg.view(win))  # fmt: skip
        if self.life.displaces:
            self.life.displace(i, fmx, fmy)
        # Premultiplied colour and matte move together in one 4-channel remap (8 bits of
        # matte are plenty for compositing), so an edge pixel only ever carries subject
        # colour. Replicating the border keeps a subject that the photo cuts off (a torso
        # at the bottom edge) opaque instead of fading it to black.
        layer = cv2.remap(scene.layer, fmx, fmy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        matte = layer[..., 3]
        # out = a F + (1 - a) plate, in saturating 8-bit arithmetic.
        out = frame[y0:y1, x0:x1][win]
        behind = cv2.multiply(
            out, cv2.cvtColor(cv2.bitwise_not(matte), cv2.COLOR_GRAY2RGB), scale=1.0 / 255.0
        )
        out[...] = cv2.add(cv2.cvtColor(layer, cv2.COLOR_RGBA2RGB), behind)
        if self.roi_matte is not None:
            self.roi_matte[win] = matte
        return self.roi_matte

    def frames(self) -> Iterator[np.ndarray]:
        for i in range(self.F):
            yield self.frame(i)


class _Grid:
    """An output grid's coordinates and their products with its parallax weight w, made once
    per plan, so each frame's maps are two weighted sums a map (PlanRig._maps)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, w: np.ndarray) -> None:
        h, wd = w.shape
        self.x = np.ascontiguousarray(np.broadcast_to(x.astype(np.float32)[None, :], (h, wd)))
        self.y = np.ascontiguousarray(np.broadcast_to(y.astype(np.float32)[:, None], (h, wd)))
        self.w = w
        self.wx = w * self.x
        self.wy = w * self.y

    def view(self, win: tuple[slice, slice]) -> _Grid:
        """The same grid over a window of it (views, nothing copied)."""
        part = _Grid.__new__(_Grid)
        part.x, part.y, part.w = self.x[win], self.y[win], self.w[win]
        part.wx, part.wy = self.wx[win], self.wy[win]
        return part


def _reads_layer(box: tuple[int, int, int, int], shape) -> tuple[float, float, float, float]:
    """The positions whose bilinear read of the layer can be other than clear: its box grown
    by a px, and without end on a side where the box meets the layer's edge (reads beyond
    the edge repeat it)."""
    bx0, by0, bx1, by1 = box
    h, w = shape[:2]
    inf = float("inf")
    return (
        -inf if bx0 <= 0 else bx0 - 1.0,
        -inf if by0 <= 0 else by0 - 1.0,
        inf if bx1 >= w else float(bx1),
        inf if by1 >= h else float(by1),
    )
