"""Per-photo scene building: working-resolution layers, depth, subject matte and inpainted background."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np

from studio.cpu import beside
from studio.errors import ImageError
from studio.motion.depth import DepthSource, HeuristicDepth
from studio.motion.edits import SubjectEdit
from studio.motion.filters import resize_to
from studio.motion.layers import (
    FILL_SIZE,
    FOLLOW,
    FOLLOW_AUTOMATIC,
    FOLLOW_AUTOMATIC_FADE,
    FOLLOW_PEOPLE,
    FOLLOW_PEOPLE_PLATEAU,
    FOLLOW_PLATEAU,
    FOLLOW_REACH,
    MATTE_FLOOR,
    background_depth,
    layer_box,
    premultiplied,
    separate_layers,
    subject_hole,
    subject_parallax_depth,
)
from studio.motion.matte import MAX_COVERAGE, shared_vision
from studio.motion.subject import Subject, find_subject
from studio.plan import VariantPlan

# Work at 1.3x the largest output so the warps resample from more pixels than they draw.
OVERSAMPLE = 1.3
MAX_WORK_SIDE = 4096
BG_DEPTH_SMOOTH = 0.012  # share of the working image's longer side
# A photo the output enlarges is analysed at its own size when it is at least this big.
ANALYSE_MIN_SIDE = 64


@dataclass(frozen=True)
class Scene:
    """Everything the renderer reads, shared read-only by all variants of one photo."""

    image: np.ndarray  # uint8 HxWx3 working-resolution photo
    plate: np.ndarray  # uint8 HxWx3 photo with the subject and its soft edge inpainted away
    alpha: np.ndarray  # float32 HxW subject matte
    layer: np.ndarray  # uint8 HxWx4 premultiplied subject (a F, a): one remap moves it
    depth: np.ndarray  # float32 HxW, 1 = near
    depth_bg: np.ndarray  # depth with the subject filled in from its surroundings
    depth_fg: np.ndarray  # subject depth extended smoothly beyond its outline
    sky: np.ndarray  # float32 masks in [0,1] for the ambient effects
    foliage: np.ndarray
    water: np.ndarray
    gloss: np.ndarray
    has_subject: bool
    subject_center: tuple[float, float]  # working px
    subject_box: tuple[int, int, int, int]  # x0, y0, x1, y1 working px (exclusive end)
    layer_box: tuple[int, int, int, int]  # the same for all the subject layer covers (soft edge)
    subject_depth: float
    scale: float  # working px per original photo px
    subject_source: str = "none"  # studio.motion.subject.Subject.source
    faces: tuple = ()  # studio.vision.Face in working px
    landmarks: tuple[np.ndarray, ...] = ()  # per face: 468 mesh points (x, y, z), working px


def working_scale(shape: tuple[int, int], plans: list[VariantPlan]) -> float:
    """Scale from the photo to the working image: OVERSAMPLE x what the largest output needs,
    except for a photo the output enlarges: oversampling it adds no detail, only (1.3 x 1.3)
    the cost of every step, so it is worked at the output's own scale."""
    h, w = shape
    need = max((max(p.width / w, p.height / h) for p in plans), default=1.0)
    scale = need if need >= 1.0 else OVERSAMPLE * need
    scale = min(scale, MAX_WORK_SIDE / max(h, w))
    return max(scale, 16.0 / min(h, w))


def analysed_at_own_size(shape: tuple[int, int], scale: float) -> bool:
    """Whether a photo of this shape, worked at this scale, is analysed at its own size (and
    its layers then enlarged): an enlarged photo holds no more to find than the photo itself."""
    return scale > 1.0 and min(shape) >= ANALYSE_MIN_SIDE


def _readonly(*arrays: np.ndarray) -> None:
    for a in arrays:
        a.flags.writeable = False


def _scaled(subject: Subject, shape: tuple[int, int]) -> Subject:
    """A subject found on the photo, moved to the working image's size."""
    h, w = shape
    h0, w0 = subject.alpha.shape[:2]
    if (h0, w0) == (h, w):
        return subject
    faces, marks = _scaled_faces(subject.faces, subject.landmarks, w / w0, h / h0)
    alpha = np.clip(resize_to(subject.alpha.astype(np.float32), w, h), 0.0, 1.0)
    return Subject(alpha=alpha, source=subject.source, faces=faces, landmarks=marks)


def _scaled_faces(faces: tuple, landmarks: tuple, sx: float, sy: float) -> tuple[tuple, tuple]:
    """Faces and their mesh points, scaled sx across and sy down."""
    moved = tuple(
        replace(
            f,
            box=(f.box[0] * sx, f.box[1] * sy, f.box[2] * sx, f.box[3] * sy),
            keypoints=tuple((x * sx, y * sy) for x, y in f.keypoints),
        )
        for f in faces
    )
    marks = tuple((m * np.array([sx, sy, sx], np.float32)).astype(np.float32) for m in landmarks)
    return moved, marks


def build_scene(
    image: np.ndarray,
    plans: list[VariantPlan],
    depth_source: DepthSource | None = None,
    vision=...,
    edits: tuple[SubjectEdit, ...] = (),
    subject: Subject | None = None,
) -> Scene:
    """Build the shared scene for one RGB uint8 photo and the plans that will be rendered from it.

    vision (studio.vision.VisionModels; by default the bundled models, None for none) finds
    people: a photo with a face gets the learned person matte as its subject; any other
    photo gets the automatic one. edits are the user's corrections to that matte. subject,
    when given (found on this photo, at its size), is used instead and vision is not asked.
    """
    # 1. Check the photo and bring it to the working size.
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ImageError("The photo must be an RGB image with 8 bits per channel.")
    if min(image.shape[:2]) < 2:
        raise ImageError("The photo is too small to animate.")
    depth_source = depth_source or HeuristicDepth()
    h0, w0 = image.shape[:2]
    scale = working_scale((h0, w0), plans)
    w, h = max(2, int(round(w0 * scale))), max(2, int(round(h0 * scale)))
    work = np.ascontiguousarray(resize_to(image, w, h))
    if analysed_at_own_size((h0, w0), scale):  # a quarter of the pixels at 2x
        found = _analyse(np.ascontiguousarray(image), 1.0, depth_source, vision, edits, subject)
        return _enlarged(found, work, scale)
    return _analyse(work, scale, depth_source, vision, edits, subject)


def _analyse(
    work: np.ndarray,
    scale: float,
    depth_source: DepthSource,
    vision,
    edits: tuple[SubjectEdit, ...],
    subject: Subject | None,
) -> Scene:
    """The scene of a photo already at the size it is analysed at (scale: that size's px per
    photo px)."""
    h, w = work.shape[:2]
    # 2. Find the subject and the depth.
    if subject is None:
        vision = shared_vision() if vision is ... else vision
        subject = find_subject(work, vision, edits)
    else:
        subject = _scaled(subject, (h, w))
    alpha = np.where(subject.alpha > MATTE_FLOOR, subject.alpha, 0.0).astype(np.float32)
    coverage = float(alpha.mean())
    has_subject = 0.003 < coverage < MAX_COVERAGE and float(alpha.max()) > 0.5
    if not has_subject:
        alpha = np.zeros((h, w), np.float32)
    depth = depth_source.estimate(work, alpha).astype(np.float32)

    fs = min(1.0, FILL_SIZE / max(h, w))
    sw, sh = max(2, int(round(w * fs))), max(2, int(round(h * fs)))
    gray = cv2.cvtColor(work, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    if has_subject:
        hard = (alpha > 0.5).astype(np.uint8)
        ys, xs = np.nonzero(hard)
        if ys.size == 0:
            ys, xs = np.nonzero(alpha > 0.05)
        box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
        wsum = float(alpha.sum())
        center = (
            float(alpha.sum(axis=0) @ np.arange(w) / wsum),
            float(alpha.sum(axis=1) @ np.arange(h) / wsum),
        )
        subject_depth = float(np.median(depth[alpha > 0.5])) if hard.any() else float(depth.max())

        # 3. The two layers: the plate is inpainted under the whole soft edge and a margin
        # around it, so no subject colour is left to show as a ghost when the subject moves;
        # the subject carries its own colours under the soft edge, premultiplied, so moving
        # it over other background shows no rim of the old one.
        hole = subject_hole(alpha)
        # 4 and 5 (the depths each layer moves by) on another core meanwhile.
        depths = beside(_layer_depths, depth, alpha, hole, subject_depth, (sw, sh), subject.source)
        plate, layer = separate_layers(work, alpha, hole)
        depth_bg, depth_fg = depths.result()
    else:
        box = (0, 0, 0, 0)
        center = (0.5 * (w - 1), 0.5 * (h - 1))
        subject_depth = float(np.median(depth))
        plate = work
        layer = np.zeros((h, w, 4), np.uint8)
        depth_bg = depth
        depth_fg = depth
    # The background moves by its depth's broad shape only: the heuristic depth carries some of
    # the photo's texture (wood grain), which a dolly-zoom would turn into ripples.
    depth_bg = cv2.GaussianBlur(
        depth_bg.astype(np.float32), (0, 0), max(1.0, BG_DEPTH_SMOOTH * max(h, w))
    )

    sky, foliage, water = _ambient_masks(work, gray, depth_bg, alpha, sw, sh)
    gloss = _gloss(gray)
    scene = Scene(
        image=work,
        plate=np.ascontiguousarray(plate),
        alpha=np.ascontiguousarray(alpha, np.float32),
        layer=layer,
        depth=depth,
        depth_bg=depth_bg.astype(np.float32),
        depth_fg=depth_fg.astype(np.float32),
        sky=sky,
        foliage=foliage,
        water=water,
        gloss=gloss.astype(np.float32),
        has_subject=has_subject,
        subject_center=center,
        subject_box=box,
        layer_box=layer_box(layer),
        subject_depth=subject_depth,
        scale=scale,
        subject_source=subject.source if has_subject else "none",
        faces=subject.faces,
        landmarks=subject.landmarks,
    )
    _readonly_scene(scene)
    return scene


def _readonly_scene(scene: Scene) -> None:
    _readonly(scene.image, scene.plate, scene.alpha, scene.depth, scene.depth_bg, scene.depth_fg)
    _readonly(scene.layer)
    _readonly(scene.sky, scene.foliage, scene.water, scene.gloss)


def _gloss(gray: np.ndarray) -> np.ndarray:
    """Where a glint may catch: the photo's bright areas, softly."""
    h, w = gray.shape
    return (cv2.GaussianBlur(gray, (0, 0), max(1.0, 0.003 * max(h, w))) ** 1.5).astype(np.float32)


def _enlarged_layer(
    layer: np.ndarray, image: np.ndarray, work: np.ndarray, box: tuple[int, int, int, int]
) -> np.ndarray:
    """The premultiplied subject layer, analysed on `image`, at the size of `work` (the same
    photo enlarged), with the enlarged photo's own detail. box: what the layer covers.

    The layer's colour is the photo's inside the subject and a solved colour along its soft
    edge: only that difference is enlarged (linearly, with the matte), and added to the
    enlarged photo, so the subject is as sharp as the plate around it.
    """
    h, w = work.shape[:2]
    h0, w0 = image.shape[:2]
    a0 = layer[..., 3].astype(np.float32) / 255.0
    seen = a0 > 2.0 / 255.0  # below that, the colour is lost to the 8 bits it was stored in
    colour = layer[..., :3].astype(np.float32) / np.maximum(a0, 1e-6)[..., None]
    diff = np.where(seen[..., None], colour - image.astype(np.float32), 0.0).astype(np.float32)
    diff = cv2.resize(diff, (w, h), interpolation=cv2.INTER_LINEAR)
    a = cv2.resize(a0, (w, h), interpolation=cv2.INTER_LINEAR)
    # Only inside the layer's box, grown by a photo px (linear reads reach one px further).
    x0, y0 = max(0, int((box[0] - 1) * w / w0)), max(0, int((box[1] - 1) * h / h0))
    x1, y1 = (
        min(w, int(math.ceil((box[2] + 1) * w / w0))),
        min(h, int(math.ceil((box[3] + 1) * h / h0))),
    )
    win = np.s_[y0:y1, x0:x1]
    f = cv2.add(work[win], diff[win], dtype=cv2.CV_32F)
    np.clip(f, 0.0, 255.0, out=f)
    out = np.zeros((h, w, 4), np.uint8)
    out[win] = premultiplied(f, np.clip(a[win], 0.0, 1.0))
    return out


def _enlarged(found: Scene, work: np.ndarray, scale: float) -> Scene:
    """A scene analysed at the photo's size, brought to the (larger) working image `work`.

    Colour is enlarged with the filter the working image was made with, so the plate matches
    it wherever nothing was inpainted; the matte, the premultiplied layer, the depths and the
    masks linearly, which never overshoots (a premultiplied colour stays within its matte).
    """
    h, w = work.shape[:2]
    h0, w0 = found.image.shape[:2]
    sx, sy = w / w0, h / h0

    def linear(m: np.ndarray) -> np.ndarray:
        return cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR)

    def unit(m: np.ndarray) -> np.ndarray:
        return np.clip(linear(m), 0.0, 1.0).astype(np.float32)

    alpha = unit(found.alpha)
    alpha[alpha <= MATTE_FLOOR] = 0.0
    layer = np.zeros((h, w, 4), np.uint8)
    if found.has_subject:
        layer = _enlarged_layer(found.layer, found.image, work, found.layer_box)
    x0, y0, x1, y1 = found.subject_box
    box = (int(math.floor(x0 * sx)), int(math.floor(y0 * sy)),
           min(w, int(math.ceil(x1 * sx))), min(h, int(math.ceil(y1 * sy))))  # fmt: skip
    cx, cy = found.subject_center
    faces, marks = _scaled_faces(found.faces, found.landmarks, sx, sy)
    scene = replace(
        found,
        image=work,
        plate=np.ascontiguousarray(resize_to(found.plate, w, h)) if found.has_subject else work,
        alpha=alpha,
        layer=layer,
        depth=linear(found.depth).astype(np.float32),
        depth_bg=linear(found.depth_bg).astype(np.float32),
        depth_fg=linear(found.depth_fg).astype(np.float32),
        sky=unit(found.sky),
        foliage=unit(found.foliage),
        water=unit(found.water),
        gloss=unit(found.gloss),
        subject_center=((cx + 0.5) * sx - 0.5, (cy + 0.5) * sy - 0.5),
        subject_box=box if found.has_subject else found.subject_box,
        layer_box=layer_box(layer),
        scale=scale,
        faces=faces,
        landmarks=marks,
    )
    _readonly_scene(scene)
    return scene


def _layer_depths(
    depth: np.ndarray,
    alpha: np.ndarray,
    hole: np.ndarray,
    subject_depth: float,
    small_size: tuple[int, int],
    source: str,
) -> tuple[np.ndarray, np.ndarray]:
    """The depth the plate moves by and the depth the subject layer moves by."""
    # 4. Depth behind the subject, filled in from its surroundings.
    follow, plateau, fade = FOLLOW, 0.0, FOLLOW_REACH  # a given matte is trusted as it is
    if source == "automatic":
        follow, plateau, fade = FOLLOW_AUTOMATIC, FOLLOW_PLATEAU, FOLLOW_AUTOMATIC_FADE
    elif source == "people":
        follow, plateau, fade = FOLLOW_PEOPLE, FOLLOW_PEOPLE_PLATEAU, FOLLOW_AUTOMATIC_FADE
    # 5. Depth the subject layer moves by: smooth inside it, so it never tears; what follows
    # it in the plate moves by the same depth.
    depth_fg = subject_parallax_depth(depth, alpha, subject_depth, small_size)
    depth_bg = background_depth(
        depth, alpha, hole, subject_depth, small_size, follow, plateau, fade, depth_fg
    )
    return depth_bg, depth_fg


def _ambient_masks(
    work, gray, depth_bg, alpha, sw, sh
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where each ambient effect may act: sky (clouds), textured background (wind), lower band (water)."""
    h, w = gray.shape
    g = cv2.resize(gray, (sw, sh), interpolation=cv2.INTER_AREA)
    d = cv2.resize(depth_bg, (sw, sh), interpolation=cv2.INTER_AREA)
    a = cv2.resize(alpha, (sw, sh), interpolation=cv2.INTER_AREA)
    away = 1.0 - np.clip(cv2.GaussianBlur(a, (0, 0), 0.02 * max(sw, sh)) * 2.5, 0.0, 1.0)
    energy = cv2.GaussianBlur(
        np.abs(cv2.Laplacian(g, cv2.CV_32F, ksize=3)), (0, 0), 0.015 * max(sw, sh)
    )
    hi = float(np.percentile(energy, 95))
    energy = np.clip(energy / hi, 0.0, 1.0) if hi > 1e-6 else np.zeros_like(energy)
    ys = ((np.arange(sh, dtype=np.float32) + 0.5) / sh)[:, None]
    small = cv2.resize(work, (sw, sh), interpolation=cv2.INTER_AREA)
    lab = cv2.cvtColor(small, cv2.COLOR_RGB2LAB).astype(np.float32)
    top = lab[: max(1, sh // 10)].reshape(-1, 3).mean(axis=0)
    like_top = np.exp(-0.5 * (np.sqrt(((lab - top) ** 2).sum(axis=2)) / 22.0) ** 2)
    # Thin structures against the sky (masts, branches) must not drift with the clouds.
    fine = np.abs(cv2.Laplacian(cv2.GaussianBlur(g, (0, 0), 0.8), cv2.CV_32F, ksize=3))
    fine = cv2.dilate((fine > 0.015).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(np.float32)
    sky = like_top * np.clip(1.3 - 1.6 * ys, 0.0, 1.0) * np.clip(1.4 - 1.6 * d, 0.0, 1.0) * away
    sky = sky * (1.0 - fine)
    sky = cv2.GaussianBlur(sky.astype(np.float32), (0, 0), 0.008 * max(sw, sh))
    foliage = energy * away * (1.0 - 0.7 * sky)
    foliage = cv2.GaussianBlur(foliage.astype(np.float32), (0, 0), 0.01 * max(sw, sh))
    band = np.clip((ys - 0.55) / 0.25, 0.0, 1.0)
    water = (band * band * (3 - 2 * band)) * away * np.ones_like(g)
    water = cv2.GaussianBlur(water.astype(np.float32), (0, 0), 0.01 * max(sw, sh))

    def up(m: np.ndarray) -> np.ndarray:
        return np.clip(cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR), 0.0, 1.0).astype(
            np.float32
        )

    return up(sky), up(foliage), up(water)
