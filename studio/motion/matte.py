"""Subject/background separation: a soft alpha matte of the photo's main subject, no model weights."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading

import cv2
import numpy as np

from studio.motion.filters import guided_filter

log = logging.getLogger(__name__)

# grabCut cost grows with pixel count; 320 px keeps it near 100 ms and the matte is
# refined back to full resolution by the guided filter anyway.
WORK_SIZE = 256
# Below this coverage there is no subject worth a layer; above it "everything is subject".
MIN_COVERAGE = 0.005
MAX_COVERAGE = 0.9
# Three or more blobs, the largest under 3% of the photo and under 60% of all of them:
# scattered points of interest, not one subject (see _scattered).
SCATTER_MAX_BLOB = 0.03
SCATTER_LEAD = 0.6


def spectral_residual_saliency(gray: np.ndarray) -> np.ndarray:
    """Hou & Zhang's spectral residual saliency at 64x64, returned at gray's size in [0,1]."""
    h, w = gray.shape
    small = cv2.resize(gray.astype(np.float32), (64, 64), interpolation=cv2.INTER_AREA)
    spec = np.fft.fft2(small)
    log_amp = np.log(np.abs(spec) + 1e-6).astype(np.float32)
    phase = np.angle(spec)
    residual = log_amp - cv2.blur(log_amp, (3, 3), borderType=cv2.BORDER_REPLICATE)
    sal = np.abs(np.fft.ifft2(np.exp(residual) * np.exp(1j * phase))) ** 2
    sal = cv2.GaussianBlur(sal.astype(np.float32), (0, 0), 2.5)
    return _normalize(cv2.resize(sal, (w, h), interpolation=cv2.INTER_LINEAR))


def _normalize(x: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(x, 1), np.percentile(x, 99)
    if hi - lo < 1e-6:
        return np.zeros_like(x, dtype=np.float32)
    return np.clip((x - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def border_contrast(lab: np.ndarray) -> np.ndarray:
    """How unlike the photo's border each pixel is, in [0,1] (border colours = background).

    Only the top edge and the upper part of the side edges serve as the background
    reference: subjects (shoulders, a table, the ground) very often touch the bottom edge.
    Each reference strip is cut into short segments so a striped or mixed border keeps
    tight colour clusters instead of one broad average that would match everything.
    """
    h, w = lab.shape[:2]
    bw = max(1, int(round(0.04 * min(h, w))))
    upper = max(bw, int(round(0.6 * h)))
    strips = [lab[:bw, :].transpose(1, 0, 2), lab[:upper, :bw], lab[:upper, -bw:]]
    flat = lab.reshape(-1, 3)
    best = np.full(flat.shape[0], np.inf, dtype=np.float32)
    seg = max(4, int(round(0.04 * max(h, w))))
    for strip in strips:
        for start in range(0, strip.shape[0], seg):
            px = strip[start : start + seg].reshape(-1, 3)
            if px.shape[0] == 0:
                continue
            mean = px.mean(axis=0)
            spread = min(float(np.sqrt(px.var(axis=0).sum())), 18.0) + 7.0
            d = np.sqrt(((flat - mean) ** 2).sum(axis=1)) / spread
            np.minimum(best, d, out=best)
    score = best.reshape(h, w)
    # A distance of ~2 spreads reads as "clearly not background".
    return (1.0 - np.exp(-0.5 * (score / 1.3) ** 2)).astype(np.float32)


def centre_prior(h: int, w: int) -> np.ndarray:
    """Subjects sit near the middle, slightly below it in portraits and products."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    dx = (xs / max(w - 1, 1) - 0.5) / 0.38
    dy = (ys / max(h - 1, 1) - 0.55) / 0.45
    return np.exp(-0.5 * (dx * dx + dy * dy)).astype(np.float32)


def foreground_probability(rgb: np.ndarray) -> np.ndarray:
    """Blend border contrast, saliency and the centre prior into a [0,1] subject score."""
    h, w = rgb.shape[:2]
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32)
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    contrast = border_contrast(lab)
    sal = spectral_residual_saliency(gray)
    prior = centre_prior(h, w)
    # Subjects are in focus and detailed; studio walls, skies and bokeh are not.
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    detail = _normalize(cv2.GaussianBlur(cv2.magnitude(gx, gy), (0, 0), 0.025 * max(h, w)))
    prob = (0.5 * contrast + 0.3 * detail + 0.2 * sal) * (0.3 + 0.7 * prior)
    # Faces are the most common subject and skin is often close to warm studio walls in
    # plain colour distance; the classic YCrCb skin box rescues them.
    ycc = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)
    cr, cb = ycc[:, :, 1].astype(np.float32), ycc[:, :, 2].astype(np.float32)
    skin = ((cr > 138) & (cr < 173) & (cb > 77) & (cb < 127) & (ycc[:, :, 0] > 60)).astype(
        np.float32
    )
    skin = cv2.GaussianBlur(skin, (0, 0), max(1.0, 0.008 * max(h, w)))
    # Gated by border contrast so a wooden table (skin-coloured, but the background) is not.
    gate = np.clip(3.0 * contrast, 0.0, 1.0)
    prob = np.maximum(prob, 0.9 * skin * prior * gate)
    return cv2.GaussianBlur(prob, (0, 0), max(1.0, 0.01 * max(h, w)))


def _largest_blobs(mask: np.ndarray) -> np.ndarray:
    """Keep connected components at least a fifth the size of the largest; fill their holes."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 1:
        return mask.astype(bool)
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.flatnonzero(areas >= 0.2 * areas.max()) + 1
    out = np.isin(labels, keep).astype(np.uint8)
    k = max(3, (min(mask.shape) // 40) | 1)
    out = cv2.morphologyEx(
        out, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    )
    # Bridge short vertical gaps (a dark collar between a face and a suit): a subject torn in
    # two layers would shear apart under parallax.
    # An upright ellipse rather than a one-pixel column: a column closes only the columns that
    # happen to have subject above and below, leaving straight seams that show once the layers move.
    vk = max(3, int(0.2 * mask.shape[0]) | 1)
    hk = max(3, (vk // 3) | 1)
    padded = cv2.copyMakeBorder(out, vk, vk, hk, hk, cv2.BORDER_CONSTANT, value=0)
    ellipse = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (hk, vk))
    out = cv2.morphologyEx(padded, cv2.MORPH_CLOSE, ellipse)[vk:-vk, hk:-hk]
    # Fill interior holes: anything not reachable from the border through background.
    inv = (1 - out).astype(np.uint8)
    n2, lab2 = cv2.connectedComponents(inv, connectivity=4)
    border_labels = np.unique(np.concatenate([lab2[0, :], lab2[-1, :], lab2[:, 0], lab2[:, -1]]))
    holes = (inv > 0) & ~np.isin(lab2, border_labels)
    out[holes] = 1
    return out.astype(bool)


def _scattered(mask: np.ndarray) -> bool:
    """True when what stands out is many small blobs and none of them leads (a star field,
    a crowd far away, confetti): cutting each out as a layer tears holes all over the photo,
    so such a photo has no subject layer and moves as one surface with its depth."""
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    areas = np.sort(stats[1:, cv2.CC_STAT_AREA])[::-1]
    if areas.size < 3:
        return False
    small = areas[0] < SCATTER_MAX_BLOB * mask.size
    return bool(small and areas[0] < SCATTER_LEAD * areas.sum())


def subject_matte(rgb: np.ndarray) -> np.ndarray:
    """Soft alpha (float32 HxW in [0,1]) of the main subject of an RGB uint8 photo.

    Returns all zeros when nothing stands out (flat or uniform photos) and never raises
    on odd input: tiny, flat or "all subject" images fall back to the soft score.
    """
    h, w = rgb.shape[:2]
    if h < 8 or w < 8:
        return np.zeros((h, w), np.float32)
    scale = min(1.0, WORK_SIZE / max(h, w))
    sw, sh = max(8, int(round(w * scale))), max(8, int(round(h * scale)))
    small = cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA) if scale < 1 else rgb.copy()
    if float(small.std()) < 2.0:
        return np.zeros((h, w), np.float32)
    prob = foreground_probability(small)
    lo, hi = float(np.percentile(prob, 2)), float(np.percentile(prob, 99.5))
    if hi - lo < 0.05:
        return np.zeros((h, w), np.float32)
    prob = np.clip((prob - lo) / (hi - lo), 0.0, 1.0)

    mask = np.full((sh, sw), cv2.GC_PR_BGD, np.uint8)
    mask[prob > 0.45] = cv2.GC_PR_FGD
    mask[prob > 0.8] = cv2.GC_FGD
    mask[prob < 0.12] = cv2.GC_BGD
    hard = prob > 0.45
    have_fg = bool((mask == cv2.GC_FGD).any() or (mask == cv2.GC_PR_FGD).any())
    have_bg = bool((mask == cv2.GC_BGD).any())
    if have_fg and have_bg:
        try:
            bgd = np.zeros((1, 65), np.float64)
            fgd = np.zeros((1, 65), np.float64)
            # grabCut seeds its GMMs with OpenCV's thread-local RNG: pin it so the same
            # photo always gives the same matte.
            cv2.setRNGSeed(1234)
            cv2.grabCut(small, mask, None, bgd, fgd, 3, cv2.GC_INIT_WITH_MASK)
            hard = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
        except cv2.error:
            pass  # keep the thresholded score; grabCut refuses degenerate colour models
    coverage = float(hard.mean())
    if coverage < MIN_COVERAGE or _scattered(hard):
        return np.zeros((h, w), np.float32)
    if coverage < MAX_COVERAGE:
        hard = _largest_blobs(hard)
    alpha = hard.astype(np.float32)
    alpha = cv2.resize(alpha, (w, h), interpolation=cv2.INTER_LINEAR)
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    radius = max(2, int(round(0.006 * max(h, w))))
    alpha = guided_filter(gray, alpha, radius, 1e-3)
    # A slight feather so the layer edge never shows a hard cut line.
    alpha = cv2.GaussianBlur(alpha, (0, 0), max(0.6, 0.4 * radius))
    return np.clip(alpha, 0.0, 1.0).astype(np.float32)


# A face smaller than this share of the photo belongs to a crowd or a background figure,
# not to the subject of a portrait.
MIN_FACE_AREA = 0.004


_VISION_LOCK = threading.Lock()
_VISION: list = []  # the shared studio.vision.VisionModels, once loaded (or None: unavailable)


def shared_vision():
    """The bundled people and face models, loaded once per process; None when LiteRT is not
    installed or a model file is damaged (the engine then uses the automatic matte)."""
    with _VISION_LOCK:
        if not _VISION:
            try:
                from studio.vision import VisionModels

                models = VisionModels()
                with _quiet_stderr():  # LiteRT's C++ "INFO: Created TensorFlow Lite..." line
                    models.preload()
            except Exception:  # a missing runtime or file must not stop the engine
                log.warning("People and face models unavailable; using the automatic matte.",
                            exc_info=True)  # fmt: skip
                models = None
            _VISION.append(models)
        return _VISION[0]


@contextlib.contextmanager
def _quiet_stderr():
    """Silence file descriptor 2 (native code's own prints) for a moment, then restore it."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def people_matte(rgb: np.ndarray, vision, faces: list | None = None) -> np.ndarray | None:
    """Soft alpha of the people in an RGB uint8 photo, from learned models, or None.

    faces are the BlazeFace faces to build on (found here when None). Only when BlazeFace
    finds a face of a fair size: the selfie model alone also "finds"
    people in cups and landscapes. Of the person mask, the parts connected to a face are
    kept (the whole person: hair, cap, clothes, what they hold against them), and its edge
    is refined against the photo so hair and shoulders follow the real outline.
    """
    h, w = rgb.shape[:2]
    if faces is None:
        faces = [
            f
            for f in vision.faces(rgb)
            if (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]) >= MIN_FACE_AREA * h * w
        ]
    if not faces:
        return None
    person = vision.person_matte(rgb)
    hard = (person > 0.5).astype(np.uint8)
    n, labels = cv2.connectedComponents(hard, connectivity=8)
    keep = set()
    for f in faces:
        x0, y0 = max(0, int(f.box[0])), max(0, int(f.box[1]))
        x1, y1 = min(w, int(np.ceil(f.box[2]))), min(h, int(np.ceil(f.box[3])))
        ids = labels[y0:y1, x0:x1]
        keep.update(int(i) for i in np.unique(ids[ids > 0]))
    if not keep:
        return None
    body = np.isin(labels, sorted(keep))
    coverage = float(body.mean())
    if not MIN_COVERAGE < coverage < MAX_COVERAGE:
        return None
    # The soft probability, but only near the kept parts (a second blob far away is dropped).
    reach = max(3, int(round(0.02 * max(h, w))) | 1)
    near = cv2.dilate(
        body.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (reach, reach))
    )
    alpha = person * near.astype(np.float32)
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    radius = max(2, int(round(0.008 * max(h, w))))
    alpha = guided_filter(gray, alpha, radius, 1e-4)
    alpha = cv2.GaussianBlur(alpha, (0, 0), max(0.6, 0.3 * radius))
    return np.clip(alpha, 0.0, 1.0).astype(np.float32)
