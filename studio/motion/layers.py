"""Split a photo into its two layers: the background plate, the subject's own edge colours, and their depths."""

from __future__ import annotations

import cv2
import numpy as np

from studio.cpu import beside
from studio.motion.filters import normalized_fill, push_pull_fill

# Matte values at or below this are noise, not subject: they are dropped from the layer.
MATTE_FLOOR = 0.01
# The plate's hole covers the whole soft edge plus this many px (and a share of the image),
# so pixels the matte calls background but that carry a little subject colour go too.
HOLE_MARGIN_PX = 2
HOLE_MARGIN = 0.002
# The plate is filled at this size: what the camera reveals is only a thin band behind the
# subject, so a soft fill is plausible and costs a few milliseconds.
FILL_SIZE = 256
# Telea's neighbourhood at fill size (a share of it): its time grows with the square of this,
# and 0.03 cost a portrait's scene a tenth of a second. Below about 0.02 its streaks show where
# the camera reveals the plate (the artifact figure of clean coffee takes rose from 0.01 to 0.17).
TELEA_RADIUS = 0.02
# How far into the hole (a share of the image) the background just outside it is carried on.
NEAR_REACH = 0.02
# Reading a pixel's subject share from its colour: trusted fully where the subject and
# background guesses differ by well over CLEAR_CONTRAST levels and the pixel lies within
# about LINE_FIT levels of the line between them; RING_CONTRAST keeps the share near 0 where
# the two are alike. The plate keeps the photo where the subject share is under KEEP[0]
# and is filled above KEEP[1].
CLEAR_CONTRAST = 30.0
LINE_FIT = 12.0
RING_CONTRAST = 12.0
RING_MIX = (0.08, 0.3)
KEEP = (0.03, 0.2)
# Where no edge colour explains the photo, the matte is raised to fit it if it is over
# RAISE[1] or the pixel is nearer the subject's colour than the background's (its distance to
# the background guess over the sum of both over LIKE[1]); if the matte is under RAISE[0] and
# that share under LIKE[0], the plate keeps the photo instead; in between, a blend.
RAISE = (0.2, 0.6)
LIKE = (0.3, 0.55)
# How strongly an edge colour is pulled towards the subject's solid colours where the matte
# is too faint to tell the subject from the background (below a matte of about 0.05).
EDGE_PRIOR = 0.002
# The subject layer moves nearly as one piece: its depth is smoothed over this share of the
# subject's size and kept within RELIEF of its median, so a cap brim over a face (a depth
# step inside the subject) bends gently instead of tearing.
RIGID_SIGMA = 0.12
RELIEF = 0.06
# Background just outside the subject moves partly with it (this share, fading over this
# share of the image): a piece of the subject the matte missed then bends, not tears.
FOLLOW = 0.6
FOLLOW_REACH = 0.03
# The automatic matte misses more (the shaded half of a rocket's nose, a cup's far rim): what it
# left in the plate just outside follows the subject more closely, so it bends instead of doubling.
FOLLOW_AUTOMATIC = 0.9
FOLLOW_PLATEAU = 0.02
FOLLOW_AUTOMATIC_FADE = 0.08
# The learned person matte misses less, but still the odd rim (a helmet ring's outer edge, a
# collar): a narrower plateau.
FOLLOW_PEOPLE = 0.8
FOLLOW_PEOPLE_PLATEAU = 0.012


def subject_hole(alpha: np.ndarray) -> np.ndarray:
    """Where the plate must be filled: every pixel the matte touches, grown by a few px."""
    h, w = alpha.shape
    margin = HOLE_MARGIN_PX + int(round(HOLE_MARGIN * max(h, w)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1, 2 * margin + 1))
    return cv2.dilate((alpha > MATTE_FLOOR).astype(np.uint8), kernel) > 0


def _crop(mask: np.ndarray, pad: int) -> tuple[slice, slice]:
    """The bounding box of mask grown by pad px: the only area the full-size fills touch."""
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    return (
        slice(max(0, int(ys.min()) - pad), min(h, int(ys.max()) + 1 + pad)),
        slice(max(0, int(xs.min()) - pad), min(w, int(xs.max()) + 1 + pad)),
    )


def _coarse_fill(image: np.ndarray, hole: np.ndarray, ys: slice, xs: slice) -> np.ndarray:
    """The hole filled at fill size (float32, the crop at full size): the fill deep inside it."""
    h, w = hole.shape
    fs = min(1.0, FILL_SIZE / max(h, w))
    sw, sh = max(2, int(round(w * fs))), max(2, int(round(h * fs)))
    small = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
    grow = max(1, int(round(0.008 * max(sw, sh))))
    touched = cv2.resize(hole.astype(np.float32), (sw, sh), interpolation=cv2.INTER_AREA) > 0.01
    small_hole = cv2.dilate(
        touched.astype(np.uint8),
        cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)),
    )
    telea = cv2.inpaint(
        small, small_hole, max(3, int(TELEA_RADIUS * max(sw, sh))), cv2.INPAINT_TELEA
    ).astype(np.float32)
    smooth = push_pull_fill(small.astype(np.float32), 1.0 - small_hole.astype(np.float32))
    # Telea keeps nearby structure, push-pull removes its streaks deep inside the hole.
    coarse = cv2.GaussianBlur(0.6 * telea + 0.4 * smooth, (0, 0), 1.0)
    return cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)[ys, xs]


def _inpaint(image: np.ndarray, hole: np.ndarray, ys: slice, xs: slice) -> np.ndarray:
    """A background guess (float32) over the crop (ys, xs): filled in the hole, the photo elsewhere."""
    h, w = hole.shape
    # 1. A coarse fill at fill size for the depth of the hole, on another core meanwhile.
    coarse_fill = beside(_coarse_fill, image, hole, ys, xs)
    # 2. Along the hole's edge the background goes on as it is just outside the hole, at
    # full size: a local average of the outside pixels, over a few px next to the edge and
    # wider further in, giving way to the coarse fill deeper in. The coarse fill alone is an
    # average over a wide area and misses the light or shade right next to the subject (a
    # backdrop lit behind a sitter).
    part = image[ys, xs].astype(np.float32)
    part_hole = hole[ys, xs]
    outside = (~part_hole).astype(np.float32)
    reach = NEAR_REACH * max(h, w)

    def local_mean(sigma: float) -> tuple[np.ndarray, np.ndarray]:
        # The mean of the outside pixels near each pixel, and how much of them there is. A
        # wide average is smooth: it is taken at a size where sigma is about 2 px.
        ph, pw = part_hole.shape
        down = max(1.0, sigma / 2.0)
        size = (max(2, int(round(pw / down))), max(2, int(round(ph / down))))
        num = cv2.resize(part * outside[..., None], size, interpolation=cv2.INTER_AREA)
        den = cv2.resize(outside, size, interpolation=cv2.INTER_AREA)
        num = cv2.GaussianBlur(num, (0, 0), sigma / down)
        den = cv2.GaussianBlur(den, (0, 0), sigma / down)
        num = cv2.resize(num, (pw, ph), interpolation=cv2.INTER_LINEAR)
        den = cv2.resize(den, (pw, ph), interpolation=cv2.INTER_LINEAR)
        return num / np.maximum(den, 1e-6)[..., None], den

    close, close_share = local_mean(max(1.5, 0.15 * reach))
    wide, wide_share = local_mean(max(3.0, 0.6 * reach))
    # Each average counts only where enough outside pixels lie within its reach.
    c = np.clip(close_share / 0.1, 0.0, 1.0)[..., None]
    near = np.clip(wide_share / 0.05, 0.0, 1.0)[..., None]
    fill = (close * c + wide * (1.0 - c)) * near + coarse_fill.result() * (1.0 - near)
    return np.where(part_hole[..., None], fill, part)


def _spread(colour: np.ndarray, known: np.ndarray) -> np.ndarray:
    """The known colours spread smoothly over the rest, worked out at half size (it is smooth)."""
    h, w = known.shape
    size = (max(2, w // 2), max(2, h // 2))
    num = cv2.resize(colour * known[..., None], size, interpolation=cv2.INTER_AREA)
    den = cv2.resize(known, size, interpolation=cv2.INTER_AREA)
    spread = push_pull_fill(num / np.maximum(den, 1e-6)[..., None], den)
    return cv2.resize(spread, (w, h), interpolation=cv2.INTER_LINEAR)


def separate_layers(
    image: np.ndarray, alpha: np.ndarray, hole: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Split the photo into the background plate (uint8 HxWx3) and the premultiplied subject
    layer (uint8 HxWx4: a F, a) such that the layer over the plate gives the photo back.

    hole is subject_hole(alpha): the plate is the photo everywhere outside it.
    """
    h, w = alpha.shape
    if not hole.any():
        return image.copy(), np.zeros((h, w, 4), np.uint8)
    # 1. A background guess over the hole (the crop holds the outside pixels it averages).
    ys, xs = _crop(hole, int(np.ceil(3.0 * NEAR_REACH * max(h, w))) + 4)
    i = image[ys, xs].astype(np.float32)
    a = alpha[ys, xs, None].astype(np.float32)
    # 2. The subject's solid colours spread outwards: what its edge most likely looks like
    # (on another core while the background is guessed).
    solid = np.clip((a[..., 0] - 0.8) / 0.2, 0.0, 1.0)
    spread = beside(_spread, i, solid) if solid.any() else None
    fill = _inpaint(image, hole, ys, xs)
    prior = spread.result() if spread is not None else i

    # 3. Read each pixel's subject share from its colour, between the two guesses. It is
    # trusted where they differ clearly and the pixel lies near the line between them: it
    # raises a matte drawn inside the real edge (or one that missed it in the margin) and
    # lowers the faint tail of a matte that spills over plain background, where the plate
    # then keeps the photo. The matte's solid and half-solid parts (hair) are kept. Only the
    # edge band is worked out: outside the hole is the photo, the solid subject is itself.
    inner = hole[ys, xs]
    matte = a[..., 0]
    back = np.where(inner[..., None], fill, i)
    colour = i.copy()
    band = inner & (matte < 1.0)
    if band.any():
        pix, bg, subj, m = i[band], fill[band], prior[band], matte[band]
        towards = subj - bg
        contrast = np.einsum("ij,ij->i", towards, towards)
        raw = np.zeros(band.shape, np.float32)
        raw[band] = np.clip(
            np.einsum("ij,ij->i", pix - bg, towards) / (contrast + RING_CONTRAST**2), 0.0, 1.0
        )
        # Smoothed a little so the texture of what lies behind does not speckle the edge.
        weight = cv2.GaussianBlur(band.astype(np.float32), (0, 0), 1.0)
        share = (cv2.GaussianBlur(raw, (0, 0), 1.0) / np.maximum(weight, 1e-3))[band]
        miss = pix - bg - share[:, None] * towards
        off_line = np.sqrt(np.einsum("ij,ij->i", miss, miss))
        trust = contrast / (contrast + CLEAR_CONTRAST**2) * np.exp(-((off_line / LINE_FIT) ** 2))
        trust *= 1.0 - solid[band]
        t = np.clip((share - RING_MIX[0]) / (RING_MIX[1] - RING_MIX[0]), 0.0, 1.0)
        up = t * t * (3.0 - 2.0 * t) * share
        down = trust * np.maximum(m - share, 0.0) * (1.0 - m) ** 2
        m = np.maximum(m - down, up)
        t = np.clip((m - KEEP[0]) / (KEEP[1] - KEEP[0]), 0.0, 1.0)
        b = pix + (bg - pix) * (t * t * (3.0 - 2.0 * t))[:, None]

        # 4. A matte lighter than the photo allows: no colour in 0..255 gives I over this
        # B, as where the matte half covers something unlike both guesses. A matte that is
        # mostly subject there is raised to the least that does; a faint one more likely
        # lies over background the fill does not know (a spoon behind a cup), so the plate
        # keeps that much of the photo instead. Either way the first frame is the photo.
        need = np.maximum((b - pix) / np.maximum(b, 1.0), (pix - b) / np.maximum(255.0 - b, 1.0))
        need = np.clip(need.max(axis=1), 0.0, 1.0)
        d_bg = np.sqrt(np.einsum("ij,ij->i", pix - bg, pix - bg))
        d_subj = np.sqrt(np.einsum("ij,ij->i", pix - subj, pix - subj))
        t = np.clip((m - RAISE[0]) / (RAISE[1] - RAISE[0]), 0.0, 1.0)
        q = np.clip((d_bg / (d_bg + d_subj + 1.0) - LIKE[0]) / (LIKE[1] - LIKE[0]), 0.0, 1.0)
        raise_ = np.maximum(t * t * (3.0 - 2.0 * t), q * q * (3.0 - 2.0 * q))
        m = m + np.maximum(need - m, 0.0) * raise_
        b = b + (pix - b) * np.clip(1.0 - m / np.maximum(need, 1e-6), 0.0, 1.0)[:, None]
        b = np.clip(np.floor(b + 0.5), 0.0, 255.0)  # as the uint8 plate will hold it

        # 5. Edge colours: I = a F + (1 - a) B with the plate as B. Solving that alone
        # amplifies every error in B where a is small, so F is also pulled (weight
        # EDGE_PRIOR) towards the solid colours; where a is clear the solution is exact.
        mm = m[:, None]
        colour[band] = (mm * (pix - (1.0 - mm) * b) + EDGE_PRIOR * subj) / (mm * mm + EDGE_PRIOR)
        back[band] = b
        matte = matte.copy()
        matte[band] = m
    plate = image.copy()
    plate[ys, xs] = np.clip(back + 0.5, 0, 255).astype(np.uint8)
    layer = np.zeros((h, w, 4), np.uint8)
    layer[ys, xs] = premultiplied(np.clip(colour, 0.0, 255.0), matte)
    return plate, layer


def layer_box(layer: np.ndarray) -> tuple[int, int, int, int]:
    """x0, y0, x1, y1 (exclusive) of everything the subject layer covers; zeros when nothing."""
    x, y, w, h = cv2.boundingRect(np.ascontiguousarray(layer[..., 3]))
    if w == 0 or h == 0:
        return (0, 0, 0, 0)
    return (x, y, x + w, y + h)


def premultiplied(colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """uint8 HxWx4 (a F, a): the subject layer as one image that bilinear remaps move correctly."""
    a = alpha[..., None].astype(np.float32)
    return np.ascontiguousarray(
        np.clip(np.dstack([colour * a, a * 255.0]) + 0.5, 0, 255).astype(np.uint8)
    )


def subject_parallax_depth(
    depth: np.ndarray, alpha: np.ndarray, subject_depth: float, small_size: tuple[int, int]
) -> np.ndarray:
    """Depth the subject layer moves by: a gentle, smooth version of its own, extended outwards.

    A depth step inside the subject (a brim over a forehead, an arm over a chest) would make
    the one layer tear along the step; smoothing over a fair share of the subject and
    limiting the relief keeps a little roundness for orbits but moves the subject as a whole.
    """
    h, w = depth.shape
    sw, sh = small_size
    inside = alpha > 0.5
    if not inside.any():
        inside = alpha > 0.05
    ys, xs = np.nonzero(inside)
    size = float(np.sqrt((np.ptp(ys) + 1) * (np.ptp(xs) + 1))) if ys.size else float(max(h, w))
    # Average only the subject's own depth into each small pixel: a plain shrink would mix
    # the background's into small subjects and their outlines.
    m = inside.astype(np.float32)
    share = cv2.resize(m, (sw, sh), interpolation=cv2.INTER_AREA)
    d = cv2.resize(depth * m, (sw, sh), interpolation=cv2.INTER_AREA) / np.maximum(share, 1e-6)
    sigma = max(1.0, RIGID_SIGMA * size * sw / w)
    smooth = normalized_fill(d, share, sigma)
    smooth = subject_depth + RELIEF * np.tanh((smooth - subject_depth) / RELIEF)
    return cv2.resize(smooth.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)


def background_depth(
    depth: np.ndarray,
    alpha: np.ndarray,
    hole: np.ndarray,
    subject_depth: float,
    small_size: tuple[int, int],
    follow: float = FOLLOW,
    plateau: float = 0.0,
    fade: float = FOLLOW_REACH,
    layer_depth: np.ndarray | None = None,
) -> np.ndarray:
    """Depth the plate moves by: the subject's depth replaced by its surroundings'.

    follow is the share by which the background right outside the subject moves with it,
    over plateau (a share of the image) before it fades over fade (another share): a long
    fade spreads the bend so a textured background is not squeezed into ripples. What
    follows moves by layer_depth (the depth the subject layer moves by, subject_parallax_depth)
    where given, so a part of the subject the plate kept moves exactly as the layer beside it.
    """
    h, w = depth.shape
    sw, sh = small_size
    small_depth = cv2.resize(depth, (sw, sh), interpolation=cv2.INTER_AREA)
    hole_f = hole.astype(np.float32)
    known = 1.0 - cv2.resize(hole_f, (sw, sh), interpolation=cv2.INTER_AREA)
    filled = push_pull_fill(small_depth, known**4)
    filled = np.minimum(filled, subject_depth)  # what is behind is never nearer
    filled = cv2.resize(filled, (w, h), interpolation=cv2.INTER_LINEAR)
    out = depth * (1.0 - hole_f) + filled * hole_f
    a_small = cv2.resize(alpha, (sw, sh), interpolation=cv2.INTER_AREA)
    inside = a_small > 0.5
    dist = cv2.distanceTransform((~inside).astype(np.uint8), cv2.DIST_L2, 3)
    reach = np.maximum(0.0, dist - plateau * max(sw, sh))
    near = follow * np.exp(-reach / (fade * max(sw, sh))) * (~inside)
    # Where the matte is faint the plate keeps part of the photo: it moves with the subject
    # layer there, or the faint part would show twice (once in each layer).
    faint = np.clip((a_small - 0.03) / 0.1, 0.0, 1.0) * (~inside)
    near = np.maximum(near, faint)
    near = cv2.resize(near.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    target = subject_depth if layer_depth is None else layer_depth
    return out + (target - out) * near
