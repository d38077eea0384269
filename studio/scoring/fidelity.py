"""How close a clip's first frame is to the source photo, and how far its colours wander by the end."""

from __future__ import annotations

import cv2
import numpy as np

# Engines often open slightly pushed in; trying a few centre crops finds the framing they used.
SCALES = (1.0, 1.03, 1.06, 1.1, 1.15)
_C1, _C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2  # the constants of Wang et al. (2004)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two grey images (Gaussian window, sigma 1.5), as in Wang et al. (2004)."""
    a, b = a.astype(np.float32), b.astype(np.float32)

    def blur(x: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(x, (11, 11), 1.5)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a * mu_a
    var_b = blur(b * b) - mu_b * mu_b
    cov = blur(a * b) - mu_a * mu_b
    num = (2 * mu_a * mu_b + _C1) * (2 * cov + _C2)
    den = (mu_a * mu_a + mu_b * mu_b + _C1) * (var_a + var_b + _C2)
    return float((num / den)[5:-5, 5:-5].mean())


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two same-size uint8 images, capped at 100 dB for identical ones."""
    mse = float(np.mean((a.astype(np.float32) - b.astype(np.float32)) ** 2))
    return 100.0 if mse < 1e-10 else float(10 * np.log10(255.0**2 / mse))


def frame_source(source: np.ndarray, width: int, height: int, zoom: float = 1.0) -> np.ndarray:
    """The source photo framed like the clip: centre crop to the clip's aspect (and zoom), resized."""
    if source.ndim == 2:
        source = cv2.cvtColor(source, cv2.COLOR_GRAY2RGB)
    source = np.ascontiguousarray(source[..., :3])
    sh, sw = source.shape[:2]
    crop_w = min(sw, sh * width / height) / zoom
    crop_h = crop_w * height / width
    x0, y0 = round((sw - crop_w) / 2), round((sh - crop_h) / 2)
    crop = source[y0 : y0 + round(crop_h), x0 : x0 + round(crop_w)]
    # Area resampling, like the clip's own downscale, so sharpness differences do not read as change.
    return cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA)


def fidelity(first: np.ndarray, source: np.ndarray) -> tuple[float, float]:
    """(SSIM, PSNR) of the first frame against the source at the best of a few centre zooms."""
    h, w = first.shape[:2]
    first_grey = cv2.cvtColor(first, cv2.COLOR_RGB2GRAY)
    best = (-1.0, 0.0)
    for zoom in SCALES:
        framed = frame_source(source, w, h, zoom)
        s = ssim(first_grey, cv2.cvtColor(framed, cv2.COLOR_RGB2GRAY))
        if s > best[0]:
            best = (s, psnr(first, framed))
    return best


def colour_drift(first: np.ndarray, last: np.ndarray, last_to_first: np.ndarray) -> float:
    """CIE76 distance (Delta E) between the mean Lab colour of the last frame and the same view in
    the first frame.

    last_to_first is the camera's 2x3 affine from last-frame to first-frame pixels: comparing the
    same content means a push-in or pan is not mistaken for a colour change.
    """
    h, w = last.shape[:2]
    inside = np.full(first.shape[:2], 255, np.uint8)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    seen = cv2.warpAffine(first, last_to_first, (w, h), flags=flags)
    valid = cv2.warpAffine(
        inside, last_to_first, (w, h), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP
    )
    # The central half only: the edges are where the camera brings in new content.
    centre = (slice(h // 4, h - h // 4), slice(w // 4, w - w // 4))
    mask = np.ascontiguousarray(valid[centre])
    if cv2.countNonZero(mask) < mask.size // 4:  # the camera moved too far to compare views
        mask = None
    means = []
    for frame in (seen, last):
        lab = cv2.cvtColor(
            np.ascontiguousarray(frame[centre]).astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab
        )
        means.append(np.array(cv2.mean(lab, mask=mask)[:3]))
    return float(np.linalg.norm(means[1] - means[0]))
