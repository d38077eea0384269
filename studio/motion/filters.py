"""Small image filters the engine shares: guided filter, push-pull fill, smooth noise, resizing."""

from __future__ import annotations

import cv2
import numpy as np


def box(img: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2r+1)^2 window; reflect borders so edges are not darkened."""
    k = 2 * radius + 1
    return cv2.boxFilter(img, -1, (k, k), normalize=True, borderType=cv2.BORDER_REFLECT)


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """He et al.'s guided filter with a grey guide: smooths src but keeps the guide's edges.

    cv2.ximgproc is not in the headless wheel, so this is the plain box-filter form. For big
    images the linear coefficients are solved at a lower resolution (the "fast" variant),
    which is visually identical because they are smooth by construction.
    """
    guide = guide.astype(np.float32, copy=False)
    src = src.astype(np.float32, copy=False)
    h, w = guide.shape[:2]
    sub = max(1, radius // 4)
    if sub > 1:
        small = (max(1, w // sub), max(1, h // sub))
        g = cv2.resize(guide, small, interpolation=cv2.INTER_AREA)
        p = cv2.resize(src, small, interpolation=cv2.INTER_AREA)
        r = max(1, radius // sub)
    else:
        g, p, r = guide, src, radius
    mean_g = box(g, r)
    mean_p = box(p, r)
    cov = box(g * p, r) - mean_g * mean_p
    var = box(g * g, r) - mean_g * mean_g
    a = cov / (var + eps)
    b = mean_p - a * mean_g
    mean_a = box(a, r)
    mean_b = box(b, r)
    if sub > 1:
        mean_a = cv2.resize(mean_a, (w, h), interpolation=cv2.INTER_LINEAR)
        mean_b = cv2.resize(mean_b, (w, h), interpolation=cv2.INTER_LINEAR)
    return mean_a * guide + mean_b


def normalized_fill(values: np.ndarray, weight: np.ndarray, sigma: float) -> np.ndarray:
    """Fill low-weight pixels with a Gaussian-weighted average of high-weight neighbours.

    This is normalized convolution: blur(values*weight) / blur(weight). Where nothing is
    known within reach the result falls back to the weighted global mean.
    """
    weight = weight.astype(np.float32)
    total = float(weight.sum())
    fallback = float((values * weight).sum() / total) if total > 1e-6 else float(values.mean())
    num = cv2.GaussianBlur(values * weight, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    den = cv2.GaussianBlur(weight, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    out = (num + 1e-3 * fallback) / (den + 1e-3)
    return out.astype(np.float32)


def push_pull_fill(image: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Fill unknown pixels from a pyramid of known-pixel averages (a smooth hole filler).

    Unlike cv2.inpaint it never streaks, so it is used for depth and as the low-frequency
    base under the inpainted background plate.
    """
    img = image.astype(np.float32)
    k = np.clip(known.astype(np.float32), 0.0, 1.0)
    kk = k[:, :, None] if img.ndim == 3 else k
    levels: list[tuple[np.ndarray, np.ndarray]] = []
    cur_v, cur_k = img * kk, k
    while min(cur_k.shape[:2]) > 2:
        levels.append((cur_v, cur_k))
        cur_v = cv2.pyrDown(cur_v)
        cur_k = cv2.pyrDown(cur_k)
    # Coarsest level: normalise to plain colours, then pull back up level by level.
    kk_top = cur_k[..., None] if img.ndim == 3 else cur_k
    filled = cur_v / np.maximum(kk_top, 1e-6)
    if float(cur_k.max()) < 1e-6:
        filled[...] = (img * kk).sum(axis=(0, 1)) / max(float(k.sum()), 1e-6)
    for v, kn in reversed(levels):
        h, w = kn.shape[:2]
        up = cv2.resize(filled, (w, h), interpolation=cv2.INTER_LINEAR)
        kn3 = kn[..., None] if img.ndim == 3 else kn
        with np.errstate(invalid="ignore", divide="ignore"):
            own = np.where(kn3 > 1e-6, v / np.maximum(kn3, 1e-6), up)
        wgt = np.clip(kn3, 0.0, 1.0)
        filled = own * wgt + up * (1.0 - wgt)
    return filled.astype(np.float32)


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> np.ndarray:
    """Seeded value noise in [0,1]: a few random cells upsampled with a cubic filter."""
    h, w = shape
    ch = max(2, int(round(cells * h / max(h, w))) + 2)
    cw = max(2, int(round(cells * w / max(h, w))) + 2)
    grid = rng.random((ch, cw), dtype=np.float32)
    up = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    lo, hi = float(up.min()), float(up.max())
    return ((up - lo) / max(hi - lo, 1e-6)).astype(np.float32)


def resize_to(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize with the right filter for the direction: area when shrinking, cubic when growing."""
    h, w = img.shape[:2]
    if (w, h) == (width, height):
        return img
    shrinking = width * height < w * h
    interp = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
    return cv2.resize(img, (width, height), interpolation=interp)
