"""Frame-to-frame motion of a clip: optical flow, flicker left after motion compensation, camera path jitter."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# Pixels this close to the edge are left out: flow and warps are least reliable there.
BORDER = 6
# The Lucas-Kanade refinement sums over every other pixel: same precision, a quarter of the cost.
LK_STEP = 2
# One ESM step from the flow's estimate already lands within ~0.01 px; more cost and gain nothing.
LK_ITERATIONS = 1
# Aliasing in the downscaled frames biases sub-pixel alignment; a light blur removes most of it.
LK_BLUR = 1.0
HUBER_K = 2.5

# Samples of the second difference averaged to find the intended (eased) acceleration.
ROUGH_WINDOW = 5


@dataclass(frozen=True)
class MotionStats:
    """What the flow pass measured, in the analysis resolution unless the name says native."""

    flicker: float  # mean |frame t+1 - warped frame t| in grey levels (0..255), averaged over pairs
    flicker_per_pair: np.ndarray  # the same, per consecutive pair
    motion: float  # mean flow magnitude, px per frame at the analysis resolution
    camera: np.ndarray  # (T-1) x 4 similarity per pair: (scale-1, rotation, tx, ty), centred coords
    camera_jitter: float  # RMS of the rough part of the path's 2nd difference, px (analysis res.)
    camera_accel: float  # RMS of the whole 2nd difference (intended easing included), px


def _normalise(gray: np.ndarray, mean: float, std: float) -> np.ndarray:
    # DIS is thrown off by global brightness changes, which are exactly what flicker is;
    # matching mean and contrast first keeps the flow about geometry only.
    g = gray.astype(np.float32)
    gain = std / max(float(g.std()), 1e-3)
    return np.clip(np.rint((g - g.mean()) * gain + mean), 0, 255).astype(np.uint8)


def _similarity_from_flow(flow: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Closed-form least-squares similarity (scale-1, rot, tx, ty) fitted to a sampled flow field."""
    f = flow[BORDER:-BORDER:LK_STEP, BORDER:-BORDER:LK_STEP]
    u = f[..., 0].ravel().astype(np.float64)
    v = f[..., 1].ravel().astype(np.float64)
    x, y = xs.astype(np.float64), ys.astype(np.float64)
    xm, ym, um, vm = x.mean(), y.mean(), u.mean(), v.mean()
    dx, dy, du, dv = x - xm, y - ym, u - um, v - vm
    denom = float((dx * dx + dy * dy).sum()) or 1.0
    a = float((dx * du + dy * dv).sum()) / denom
    b = float((dx * dv - dy * du).sum()) / denom
    return np.array([a, b, um - (a * xm - b * ym), vm - (b * xm + a * ym)])


def _refine_similarity(
    prev: np.ndarray,
    cur: np.ndarray,
    gcx: np.ndarray,
    gcy: np.ndarray,
    p: np.ndarray,
    xs: np.ndarray,
    ys: np.ndarray,
) -> np.ndarray:
    """Sharpen a similarity estimate with robust global Lucas-Kanade (ESM gradients, gain + bias).

    Dense flow is only good to ~0.1 px per pair, which would read as jitter on a perfectly smooth
    move; fitting four parameters to every pixel at once gets to ~0.01 px.
    """
    h, w = cur.shape
    cx, cy = (w - 1) / 2, (h - 1) / 2
    sl = (slice(BORDER, -BORDER, LK_STEP), slice(BORDER, -BORDER, LK_STEP))
    target = cur[sl].ravel()
    p = p.astype(np.float64).copy()
    gain, bias = 0.0, 0.0
    for _ in range(LK_ITERATIONS):
        a, b = 1.0 + p[0], p[1]
        m = np.array(
            [[a, -b, p[2] + cx - a * cx + b * cy], [b, a, p[3] + cy - b * cx - a * cy]],
            np.float32,
        )
        warped = cv2.warpAffine(
            prev,
            m,
            (w, h),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )
        gx = 0.5 * (cv2.Sobel(warped, cv2.CV_32F, 1, 0, ksize=1, scale=0.5)[sl].ravel() + gcx)
        gy = 0.5 * (cv2.Sobel(warped, cv2.CV_32F, 0, 1, ksize=1, scale=0.5)[sl].ravel() + gcy)
        src = warped[sl].ravel()
        resid = (1.0 + gain) * src + bias - target
        # Huber weights so local motion (hair, water, a waving hand) does not drag the camera.
        absr = np.abs(resid)
        # Mean |r| * 1.25 is the sigma of Gaussian noise; cheaper than a median and as good here.
        wts = np.minimum(1.0, HUBER_K * 1.25 * float(absr.mean()) / (absr + 1e-6))
        sd = np.stack([gx * xs + gy * ys, gy * xs - gx * ys, gx, gy, src, np.ones_like(src)])
        hess = (sd * wts) @ sd.T
        grad = (sd * wts) @ resid
        try:
            step = np.linalg.solve(hess.astype(np.float64), -grad.astype(np.float64))
        except np.linalg.LinAlgError:  # a flat frame has no texture to align on
            break
        p += step[:4]
        gain += step[4]
        bias += step[5]
    return p


def analyse(gray: np.ndarray) -> MotionStats:
    """Measure flow, flicker and the camera path of T grey frames (T x h x w uint8, T >= 2)."""
    t, h, w = gray.shape
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
    grid_y, grid_x = np.mgrid[0:h, 0:w].astype(np.float32)
    xs = (grid_x[BORDER:-BORDER:LK_STEP, BORDER:-BORDER:LK_STEP] - (w - 1) / 2).ravel()
    ys = (grid_y[BORDER:-BORDER:LK_STEP, BORDER:-BORDER:LK_STEP] - (h - 1) / 2).ravel()
    inner = np.zeros((h, w), bool)
    inner[BORDER:-BORDER, BORDER:-BORDER] = True
    sl = (slice(BORDER, -BORDER, LK_STEP), slice(BORDER, -BORDER, LK_STEP))

    flicker = np.zeros(t - 1)
    motion = np.zeros(t - 1)
    camera = np.zeros((t - 1, 4))
    frames32 = gray.astype(np.float32)
    smooth32 = np.stack([cv2.GaussianBlur(f, (0, 0), LK_BLUR) for f in frames32])
    for i in range(t - 1):
        prev, cur = gray[i], gray[i + 1]
        prev_n = _normalise(prev, float(cur.mean()), float(cur.std()))
        # Backward flow (t+1 -> t): every pixel of frame t+1 knows where it came from, so one
        # remap warps frame t onto it without holes.
        flow = dis.calc(cur, prev_n, None)
        map_x, map_y = grid_x + flow[..., 0], grid_y + flow[..., 1]
        # Pixels that came from outside frame t are new content, not flicker.
        valid = inner & (map_x >= 0) & (map_x <= w - 1) & (map_y >= 0) & (map_y <= h - 1)
        warped = cv2.remap(frames32[i], map_x, map_y, cv2.INTER_LINEAR)
        flicker[i] = cv2.mean(cv2.absdiff(frames32[i + 1], warped), mask=valid.view(np.uint8))[0]
        gcx = cv2.Sobel(smooth32[i + 1], cv2.CV_32F, 1, 0, ksize=1, scale=0.5)[sl].ravel()
        gcy = cv2.Sobel(smooth32[i + 1], cv2.CV_32F, 0, 1, ksize=1, scale=0.5)[sl].ravel()
        # Flow in flat sky or skin is mostly noise (the aperture problem); weighting by texture
        # keeps a still clip with grain or flicker reading as still.
        texture = gcx * gcx + gcy * gcy
        f = flow[sl]
        speed = cv2.magnitude(f[..., 0], f[..., 1]).ravel()
        motion[i] = float((speed * texture).sum() / max(float(texture.sum()), 1e-6))
        p = _similarity_from_flow(flow, xs, ys)
        camera[i] = _refine_similarity(smooth32[i], smooth32[i + 1], gcx, gcy, p, xs, ys)

    # The camera path (where the frame centre goes) is the running sum of per-pair moves, so its
    # second difference is the change between consecutive moves. Zoom is fitted so it does not
    # leak into the centre's track, but it is left out of the roughness: its estimate is too noisy
    # at this resolution, and ffmpeg-style rounding shows up in the centre anyway.
    accel = np.diff(camera[:, 2:], axis=0)
    camera_accel = float(np.sqrt((accel**2).sum(axis=1).mean())) if len(accel) else 0.0
    jitter = _rough_rms(accel)
    return MotionStats(
        flicker=float(flicker.mean()),
        flicker_per_pair=flicker,
        motion=float(motion.mean()),
        camera=camera,
        camera_jitter=jitter,
        camera_accel=camera_accel,
    )


def _rough_rms(accel: np.ndarray, window: int = ROUGH_WINDOW) -> float:
    """RMS of the second difference once its slowly varying part is removed.

    An eased push-in or pan accelerates on purpose: its second difference is a smooth curve
    (about 0.07 px/frame² for a 40 px pan eased over 2 s). Shake, rounding to whole pixels and
    tracking glitches change from one frame to the next. Subtracting a centred moving average of
    `window` samples keeps the second kind and drops the first; the result is rescaled so white
    noise reads at its true RMS.
    """
    if len(accel) < window + 2:
        return float(np.sqrt((accel**2).sum(axis=1).mean())) if len(accel) else 0.0
    kernel = np.ones(window) / window
    trend = np.stack([np.convolve(accel[:, k], kernel, mode="valid") for k in range(2)], 1)
    half = window // 2
    rough = accel[half : len(accel) - half] - trend
    return float(np.sqrt((rough**2).sum(axis=1).mean() / (1 - 1 / window)))


def end_to_start(camera: np.ndarray, width: int, height: int) -> np.ndarray:
    """2x3 affine taking last-frame pixels to first-frame pixels, chained from the per-pair camera."""
    chain = np.eye(3)
    for ds, rot, tx, ty in camera:
        chain = chain @ np.array([[1 + ds, -rot, tx], [rot, 1 + ds, ty], [0, 0, 1]])
    cx, cy = (width - 1) / 2, (height - 1) / 2
    centre = np.array([[1, 0, cx], [0, 1, cy], [0, 0, 1]])
    uncentre = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]])
    return (centre @ chain @ uncentre)[:2]
