"""Per-photo scene building: working-resolution layers, depth, subject matte and inpainted background."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from studio.errors import ImageError
from studio.motion.depth import DepthSource, HeuristicDepth
from studio.motion.edits import SubjectEdit
from studio.motion.filters import normalized_fill, push_pull_fill, resize_to
from studio.motion.matte import MAX_COVERAGE, shared_vision
from studio.motion.subject import find_subject
from studio.plan import VariantPlan

# Work at 1.3x the largest output so the warps resample from more pixels than they draw.
OVERSAMPLE = 1.3
MAX_WORK_SIDE = 4096
# The background plate is filled at this size: what the camera reveals is only a thin band
# behind the subject, so a soft fill is plausible and costs a few milliseconds.
FILL_SIZE = 256


@dataclass(frozen=True)
class Scene:
    """Everything the renderer reads, shared read-only by all variants of one photo."""

    image: np.ndarray  # uint8 HxWx3 working-resolution photo (foreground layer)
    plate: np.ndarray  # uint8 HxWx3 photo with the subject inpainted away (background layer)
    alpha: np.ndarray  # float32 HxW subject matte
    image_alpha: np.ndarray  # uint8 HxWx4: image + matte, so one remap moves the subject layer
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
    subject_depth: float
    scale: float  # working px per original photo px
    subject_source: str = "none"  # studio.motion.subject.Subject.source
    faces: tuple = ()  # studio.vision.Face in working px
    landmarks: tuple[np.ndarray, ...] = ()  # per face: 468 mesh points (x, y, z), working px


def working_scale(shape: tuple[int, int], plans: list[VariantPlan]) -> float:
    """Scale from the photo to the working image: OVERSAMPLE x what the largest output needs."""
    h, w = shape
    need = max((max(p.width / w, p.height / h) for p in plans), default=1.0)
    scale = OVERSAMPLE * need
    scale = min(scale, MAX_WORK_SIDE / max(h, w))
    return max(scale, 16.0 / min(h, w))


def _readonly(*arrays: np.ndarray) -> None:
    for a in arrays:
        a.flags.writeable = False


def build_scene(
    image: np.ndarray,
    plans: list[VariantPlan],
    depth_source: DepthSource | None = None,
    vision=...,
    edits: tuple[SubjectEdit, ...] = (),
) -> Scene:
    """Build the shared scene for one RGB uint8 photo and the plans that will be rendered from it.

    vision (studio.vision.VisionModels; by default the bundled models, None for none) finds
    people: a photo with a face gets the learned person matte as its subject; any other
    photo gets the automatic one. edits are the user's corrections to that matte.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ImageError("The photo must be an RGB image with 8 bits per channel.")
    if min(image.shape[:2]) < 2:
        raise ImageError("The photo is too small to animate.")
    depth_source = depth_source or HeuristicDepth()
    h0, w0 = image.shape[:2]
    scale = working_scale((h0, w0), plans)
    w, h = max(2, int(round(w0 * scale))), max(2, int(round(h0 * scale)))
    work = np.ascontiguousarray(resize_to(image, w, h))

    vision = shared_vision() if vision is ... else vision
    subject = find_subject(work, vision, edits)
    alpha = subject.alpha
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
        # The fill is computed over the grown hole (so the subject's colour halo does not
        # bleed into it) but only replaces the solid part of the subject: under the matte's
        # soft edge the photo itself stays, so the first frame composites back exactly and
        # a matte edge in the wrong place never shows a blurred band.
        t = np.clip((alpha - 0.1) / 0.3, 0.0, 1.0)
        hole_soft = (t * t * (3.0 - 2.0 * t)).astype(np.float32)
        small = cv2.resize(work, (sw, sh), interpolation=cv2.INTER_AREA)
        # Grow the hole at fill resolution (cheap) to leave the subject's colour halo out.
        grow = max(2, int(round(0.02 * max(sw, sh))))
        small_hole = cv2.dilate(
            (cv2.resize(alpha, (sw, sh), interpolation=cv2.INTER_AREA) > 0.05).astype(np.uint8),
            cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)),
        )
        telea = cv2.inpaint(
            small, small_hole, max(3, int(0.03 * max(sw, sh))), cv2.INPAINT_TELEA
        ).astype(np.float32)
        smooth = push_pull_fill(small.astype(np.float32), 1.0 - small_hole.astype(np.float32))
        # Telea keeps nearby structure, push-pull removes its streaks deep inside the hole.
        fill = cv2.GaussianBlur(0.6 * telea + 0.4 * smooth, (0, 0), 1.0)
        fill = cv2.resize(fill, (w, h), interpolation=cv2.INTER_CUBIC)
        m = hole_soft[:, :, None]
        plate = np.clip(work.astype(np.float32) * (1.0 - m) + fill * m, 0, 255).astype(np.uint8)

        small_depth = cv2.resize(depth, (sw, sh), interpolation=cv2.INTER_AREA)
        known = 1.0 - cv2.resize(hole_soft, (sw, sh), interpolation=cv2.INTER_AREA)
        bg_small = push_pull_fill(small_depth, known**4)
        bg_small = np.minimum(bg_small, subject_depth)  # what is behind is never nearer
        depth_bg = cv2.resize(bg_small, (w, h), interpolation=cv2.INTER_LINEAR)
        depth_bg = depth * (1.0 - hole_soft) + depth_bg * hole_soft
        # Background just outside the matte partly follows the subject: a matte that missed
        # a piece of the subject (a collar, a handle) then bends a little instead of tearing.
        inside = cv2.resize(alpha, (sw, sh), interpolation=cv2.INTER_AREA) > 0.5
        dist = cv2.distanceTransform((~inside).astype(np.uint8), cv2.DIST_L2, 3)
        near = 0.6 * np.exp(-dist / (0.03 * max(sw, sh))) * (~inside)
        near = cv2.resize(near.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
        depth_bg = depth_bg + (subject_depth - depth_bg) * near
        a_small = cv2.resize(alpha, (sw, sh), interpolation=cv2.INTER_AREA)
        ext = normalized_fill(small_depth, (a_small > 0.5).astype(np.float32), 0.08 * max(sw, sh))
        depth_fg = cv2.resize(ext, (w, h), interpolation=cv2.INTER_LINEAR)
        depth_fg = depth * alpha + depth_fg * (1.0 - alpha)
    else:
        box = (0, 0, 0, 0)
        center = (0.5 * (w - 1), 0.5 * (h - 1))
        subject_depth = float(np.median(depth))
        plate = work
        depth_bg = depth
        depth_fg = depth
    depth_bg = cv2.GaussianBlur(depth_bg.astype(np.float32), (0, 0), max(1.0, 0.004 * max(h, w)))

    sky, foliage, water = _ambient_masks(work, gray, depth_bg, alpha, sw, sh)
    gloss = cv2.GaussianBlur(gray, (0, 0), max(1.0, 0.003 * max(h, w))) ** 1.5
    scene = Scene(
        image=work,
        plate=np.ascontiguousarray(plate),
        alpha=np.ascontiguousarray(alpha, np.float32),
        image_alpha=np.ascontiguousarray(
            np.dstack([work, np.clip(alpha * 255.0 + 0.5, 0, 255).astype(np.uint8)])
        ),
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
        subject_depth=subject_depth,
        scale=scale,
        subject_source=subject.source if has_subject else "none",
        faces=subject.faces,
        landmarks=subject.landmarks,
    )
    _readonly(scene.image, scene.plate, scene.alpha, scene.depth, scene.depth_bg, scene.depth_fg)
    _readonly(scene.image_alpha)
    _readonly(scene.sky, scene.foliage, scene.water, scene.gloss)
    return scene


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
