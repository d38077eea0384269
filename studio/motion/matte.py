"""Subject/background separation: a soft alpha matte of the photo's main subject, no model weights."""

from __future__ import annotations

import logging
import threading

import cv2
import numpy as np

from studio.cpu import beside
from studio.motion.filters import guided_filter

log = logging.getLogger(__name__)

# Colour evidence, posteriors and blobs are worked out at this long side; the matte is then
# refined against the full-size photo, so more pixels here would only cost time.
CUE_SIZE = 256
# Fine detail (what is in focus) is measured at this long side: any smaller and the blur of
# an out-of-focus background is too small to tell from a sharp edge.
FOCUS_SIZE = 384
# Below this coverage there is no subject worth a layer; above it "everything is subject".
MIN_COVERAGE = 0.005
MAX_COVERAGE = 0.9
# Three or more blobs of note (at least a tenth of the largest), the largest under 3% of the
# photo and under 60% of those: scattered points of interest, not one subject (_scattered).
SCATTER_MAX_BLOB = 0.03
SCATTER_LEAD = 0.6
SCATTER_NOTE = 0.1
# Of several blobs, those with at least this share of the strongest one's evidence are kept:
# two cups side by side are both the subject, a stray patch of wall is not.
KEEP_SHARE = 0.25
# Gaps narrower than this share of the long side are bridged before holes are filled: the
# rim of a cup seen from above, broken by a highlight, still encloses the coffee.
HOLE_GAP = 0.03
# The photo's outer band (a share of its short side) is the background's colour sample; the
# bottom counts for less because subjects stand on it (a cup on a table, a person's chest).
RING = 0.04
BOTTOM_WEIGHT = 0.5
# A colour belongs to the subject when under half the share of its pixels expected of a
# background colour lies in that band (step 3 of subject_matte).
DISTINCT = 0.5
# A photo is a defocus shot (sharp subject, soft background) when this share of its band
# shows blurred structure, or its middle is this much sharper than its band; fully so at
# twice that.
DEFOCUS_START = 0.15
# Colour histograms: L* coarse (shading varies), a* and b* fine (hue tells a red saucer from
# a brown table). Bins hold 0..255 L* and a*, b* of 64..191 (OpenCV's 8-bit Lab).
L_BINS, AB_BINS = 12, 24
# A darker version of a background colour is mostly its shadow (a box's on a white sweep):
# each L* bin down keeps this share of the background's likelihood.
SHADOW = 0.5
# How strongly the centre prior, and focus in a defocus shot, tilt a colour that the colour
# evidence leaves undecided (log-odds across their range). Focus tilts gently: an animal's
# out-of-focus chest is still the animal.
CENTRE_TILT = 2.0
FOCUS_TILT = 1.0
# In a defocus shot, blurred structure away from the middle counts this much as background.
BLUR_EVIDENCE = 0.6


def centre_prior(h: int, w: int) -> np.ndarray:
    """Subjects sit near the middle, slightly below it in portraits and products."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    dx = (xs / max(w - 1, 1) - 0.5) / 0.38
    dy = (ys / max(h - 1, 1) - 0.55) / 0.45
    return np.exp(-0.5 * (dx * dx + dy * dy)).astype(np.float32)


def focus_cues(rgb: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where an RGB photo is sharp, where it shows blurred structure, and where it is flat,
    as maps of size (w, h): sharp and blurred float32 in [0, 1], flat boolean.

    Fine detail (the photo minus a 1 px blur) is compared with coarser structure (a 1 px minus
    a 3 px blur): an out-of-focus background keeps its coarse structure but loses its fine
    detail, while flat walls, skies and sweeps have neither.
    """
    h, w = rgb.shape[:2]
    s = min(1.0, FOCUS_SIZE / max(h, w))
    fw, fh = max(8, round(w * s)), max(8, round(h * s))
    small = cv2.resize(rgb, (fw, fh), interpolation=cv2.INTER_AREA) if s < 1 else rgb
    g = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    g1 = cv2.GaussianBlur(g, (0, 0), 1.0)
    g3 = cv2.GaussianBlur(g, (0, 0), 3.0)
    sigma = 0.008 * max(fw, fh)
    fine = cv2.GaussianBlur(np.abs(g - g1), (0, 0), sigma)
    coarse = cv2.GaussianBlur(np.abs(g1 - g3), (0, 0), sigma)
    fine = cv2.resize(fine, size, interpolation=cv2.INTER_AREA)
    coarse = cv2.resize(coarse, size, interpolation=cv2.INTER_AREA)
    # Measured against the photo's own sharpest detail, so exposure and contrast do not matter.
    top = max(float(np.percentile(fine, 95)), 1e-4)
    structure = np.clip((coarse / top - 0.12) / 0.15, 0.0, 1.0)
    ratio = fine / (coarse + 1e-4)
    blurred = structure * np.clip((0.6 - ratio) / 0.25, 0.0, 1.0)
    sharp = (
        structure * np.clip((ratio - 0.5) / 0.25, 0.0, 1.0) * np.clip(fine / top / 0.3, 0.0, 1.0)
    )
    flat = (coarse < 0.004) & (fine < 0.006)
    return sharp.astype(np.float32), blurred.astype(np.float32), flat


def _colour_bins(rgb: np.ndarray) -> np.ndarray:
    """Each pixel's Lab histogram bin, flattened."""
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.int32)
    lum = np.minimum(lab[..., 0] * L_BINS // 256, L_BINS - 1)
    a = np.clip((lab[..., 1] - 64) * AB_BINS // 128, 0, AB_BINS - 1)
    b = np.clip((lab[..., 2] - 64) * AB_BINS // 128, 0, AB_BINS - 1)
    return ((lum * AB_BINS + a) * AB_BINS + b).ravel()


def _histogram(bins: np.ndarray, weight: np.ndarray, normalise: bool = True) -> np.ndarray:
    """Weighted colour histogram, smoothed by one bin along each axis (no wrap-around)."""
    counts = np.bincount(bins, weights=weight.ravel(), minlength=L_BINS * AB_BINS * AB_BINS)
    hist = counts.reshape(L_BINS, AB_BINS, AB_BINS)
    for axis in range(3):
        hist = np.moveaxis(hist, axis, 0)
        smooth = 0.5 * hist
        smooth[1:] += 0.25 * hist[:-1]
        smooth[:-1] += 0.25 * hist[1:]
        hist = np.moveaxis(smooth, 0, axis)
    hist = hist.ravel()
    return hist / max(float(hist.sum()), 1e-12) if normalise else hist


def _with_shadows(hist: np.ndarray) -> np.ndarray:
    """A background histogram that also explains darker versions of its colours."""
    cube = hist.reshape(L_BINS, AB_BINS, AB_BINS)
    out = cube.copy()
    for k in (1, 2, 3):
        out[:-k] += SHADOW**k * cube[k:]
    return out.ravel() / max(float(out.sum()), 1e-12)


def _posterior(
    bins: np.ndarray, subject: np.ndarray, background: np.ndarray, tilt: np.ndarray
) -> np.ndarray:
    """P(subject | colour, place) from evidence weights of both, with the subject's share of
    the photo estimated from the photo itself (a few EM steps); tilt (the odds that the place
    alone gives) decides where the colours do not."""
    hf = _histogram(bins, subject)[bins]
    hb = _with_shadows(_histogram(bins, background))[bins]
    shape = tilt.shape
    tilt = tilt.ravel()
    share = 0.4
    for _ in range(4):
        pf = share * hf * tilt
        post = pf / (pf + (1.0 - share) * hb + 1e-12)
        share = float(np.clip(post.mean(), 0.05, 0.95))
    return post.reshape(shape).astype(np.float32)


def _backdrop(flat: np.ndarray) -> np.ndarray:
    """Flat areas reached from the top or the upper sides: skies, walls, studio sweeps."""
    _, labels = cv2.connectedComponents(flat.astype(np.uint8), connectivity=4)
    upper = max(1, int(0.6 * flat.shape[0]))
    seeds = np.unique(np.concatenate([labels[0], labels[:upper, 0], labels[:upper, -1]]))
    return np.isin(labels, seeds[seeds > 0])


def _smooth(prob: np.ndarray, gray: np.ndarray) -> np.ndarray:
    """Edge-aware smoothing: speckle goes, thin parts along the photo's edges stay."""
    return np.clip(guided_filter(gray, prob, 2, 1e-2), 0.0, 1.0)


def _scattered(mask: np.ndarray) -> bool:
    """True when what stands out is many small blobs and none of them leads (a star field,
    a crowd far away, confetti): cutting each out as a layer tears holes all over the photo,
    so such a photo has no subject layer and moves as one surface with its depth. Specks
    (lights around a rocket on its pad) do not count: with them, whether the rocket leads
    would turn on a few pixels, and so on the size the photo is worked at."""
    _, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    areas = np.sort(stats[1:, cv2.CC_STAT_AREA])[::-1]
    areas = areas[areas >= SCATTER_NOTE * areas[0]] if areas.size else areas
    if areas.size < 3:
        return False
    small = areas[0] < SCATTER_MAX_BLOB * mask.size
    return bool(small and areas[0] < SCATTER_LEAD * areas.sum())


def _strongest_blobs(mask: np.ndarray, strength: np.ndarray) -> np.ndarray:
    """The blobs whose summed strength is at least KEEP_SHARE of the strongest blob's."""
    n, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    if n <= 2:
        return mask
    sums = np.bincount(labels.ravel(), weights=strength.ravel(), minlength=n)[1:]
    keep = np.flatnonzero(sums >= KEEP_SHARE * sums.max()) + 1
    return np.isin(labels, keep)


def _fill_holes(mask: np.ndarray, gap: int = 0) -> np.ndarray:
    """Fill what the mask encloses, also through openings narrower than 2 * gap + 1 pixels."""
    if gap:
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * gap + 1, 2 * gap + 1))
        closed = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_CLOSE, k) > 0
        holes = _fill_holes(closed) & ~closed
        bridges = closed & (cv2.dilate(holes.astype(np.uint8), k) > 0)
        return _fill_holes(mask | holes | bridges)
    outside = (~mask).astype(np.uint8)
    _, labels = cv2.connectedComponents(outside, connectivity=4)
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    return mask | ((outside > 0) & ~np.isin(labels, edge))


def subject_matte(rgb: np.ndarray) -> np.ndarray:
    """Soft alpha (float32 HxW in [0,1]) of the main subject of an RGB uint8 photo.

    The subject is what the photo's border does not show: colours that are rare in its outer
    band, where it is sharp and the rest is blurred, and near its middle. Returns all zeros
    when nothing stands out (flat photos, star fields) and never raises on odd input.
    """
    h, w = rgb.shape[:2]
    zero = np.zeros((h, w), np.float32)
    if h < 8 or w < 8:
        return zero

    # 1. A small copy, and the cues measured on it.
    s = min(1.0, CUE_SIZE / max(h, w))
    sw, sh = max(8, round(w * s)), max(8, round(h * s))
    small = cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA) if s < 1 else rgb
    if float(small.std()) < 2.0:
        return zero
    cues = beside(focus_cues, rgb, (sw, sh))  # on another core meanwhile
    bins = _colour_bins(small)
    gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    sharp, blurred, flat = cues.result()
    prior = centre_prior(sh, sw)

    # 2. Background evidence: the outer band, and flat backdrops reached from the top. Where
    # the band shows blurred structure, its sharp parts are the subject running off the frame
    # (a cat's head fills it) and do not count; in a defocus shot, blurred structure away from
    # the middle is background too.
    bw = max(2, round(RING * min(sh, sw)))
    band = np.zeros((sh, sw), np.float32)
    band[:bw] = band[:, :bw] = band[:, -bw:] = 1.0
    band[-bw:] = BOTTOM_WEIGHT
    ring, centre = band > 0, prior > 0.6
    blurred_band = float(np.clip((blurred[ring].mean() - DEFOCUS_START) / DEFOCUS_START, 0, 1))
    sharper_centre = (sharp[centre].mean() - sharp[ring].mean() - DEFOCUS_START) / DEFOCUS_START
    defocus = float(np.clip(max(blurred_band, sharper_centre), 0.0, 1.0))
    band *= 1.0 - blurred_band * sharp
    backdrop = _backdrop(flat)
    background = np.clip(
        band + backdrop + BLUR_EVIDENCE * defocus * blurred * (1.0 - prior), 0.0, 1.0
    )

    # 3. Subject evidence: colours the band holds far less of than a background colour would
    # (a band colour has about the band's share of its pixels in the band), near the middle;
    # in a defocus shot, what is sharp.
    count = np.maximum(_histogram(bins, np.ones(sh * sw), normalise=False), 1e-9)
    band_share = max(float(band.sum()) / (sh * sw), 1e-6)
    in_band = (_histogram(bins, band, normalise=False) / count)[bins].reshape(sh, sw) / band_share
    in_backdrop = (_histogram(bins, backdrop, normalise=False) / count)[bins].reshape(sh, sw)
    distinct = np.clip(1.0 - in_band / DISTINCT, 0.0, 1.0) * np.clip(
        1.0 - in_backdrop / 0.3, 0.0, 1.0
    )
    subject = np.clip((1.0 - defocus) * distinct * prior + defocus * sharp, 0.0, 1.0)
    subject *= 1.0 - background

    # 4. First pass: the posterior, and the blobs worth keeping. Where colours do not decide,
    # the middle leans to subject, and in a defocus shot a little what is in focus.
    focus = cv2.GaussianBlur(sharp, (0, 0), 0.02 * max(sw, sh))
    focus = np.clip(focus / max(float(np.percentile(focus, 95)), 1e-3), 0.0, 1.0)
    tilt = np.exp(CENTRE_TILT * (prior - 0.5) + FOCUS_TILT * defocus * (focus - 0.5))
    post = _smooth(_posterior(bins, subject, background, tilt), gray)
    hard = post > 0.5
    if hard.mean() < MIN_COVERAGE or _scattered(hard):
        return zero
    hard = _strongest_blobs(hard, post * prior)

    # 5. Second pass: colour models learned from those blobs (their core) and from what is
    # clearly outside them, still anchored by the evidence; keep what overlaps the first
    # pass, with its holes filled.
    k3 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    core = cv2.erode(hard.astype(np.uint8), k3) > 0
    outside = cv2.erode((~hard).astype(np.uint8), k3) > 0
    post2 = _posterior(bins, core * post + subject, outside * (1.0 - post) + background, tilt)
    hard2 = _smooth(post2, gray) > 0.5
    if hard2.mean() < MIN_COVERAGE or _scattered(hard2):
        return zero
    n, labels = cv2.connectedComponents(hard2.astype(np.uint8), connectivity=8)
    ids = np.unique(labels[hard & hard2])
    ids = ids[ids > 0]
    hard = np.isin(labels, ids) if ids.size else hard
    hard = _fill_holes(hard, max(1, round(HOLE_GAP * max(sh, sw))))
    if hard.mean() < MIN_COVERAGE:
        return zero

    # 6. Back to full size, the edge refined against the photo and feathered a little so
    # the layer never shows a hard cut line.
    alpha = cv2.resize(hard.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    full_gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    radius = max(2, round(0.006 * max(h, w)))
    alpha = guided_filter(full_gray, alpha, radius, 1e-3)
    alpha = cv2.GaussianBlur(alpha, (0, 0), max(0.6, 0.4 * radius))
    return np.clip(alpha, 0.0, 1.0).astype(np.float32)


# A face smaller than this share of the photo belongs to a crowd or a background figure,
# not to the subject of a portrait.
MIN_FACE_AREA = 0.004

_VISION_LOCK = threading.Lock()
_VISION_FAILED: set[str] = set()  # model folders that would not load (warned about once)


def shared_vision():
    """The bundled people and face models (studio.vision.VisionModels), loaded once by the
    model manager and counted in its budget; None when LiteRT is not installed or a model
    file is damaged (the engine then uses the automatic matte, and says so once)."""
    from studio.models import get_manager
    from studio.vision import vision_helper

    helper = vision_helper()
    where = str(helper.folder)
    if where in _VISION_FAILED:
        return None
    try:
        return get_manager().load_helper(helper)
    except Exception as exc:  # a missing runtime or file must not stop the engine
        with _VISION_LOCK:
            if where not in _VISION_FAILED:
                _VISION_FAILED.add(where)
                log.warning(
                    "People and face models unavailable (%s); using the automatic matte.", exc
                )
        return None


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
