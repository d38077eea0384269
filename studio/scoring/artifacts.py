"""Layer artifacts a person sees: seams, holes, halos, smears and stray specks that the first frame does not have.

At a few checkpoint frames t, the first frame is carried onto frame t (the camera path first, then
dense optical flow for parallax and local motion) and compared with what frame t shows:

* thin structure: lines and dots one or two pixels wide (|image - its 5x5 median|) that frame t
  has and the carried first frame has nowhere near. A seam tracing the subject's edge, floating
  wisps and specks look like this; a step edge (an outline that merely moved) has no thin
  structure, and texture already in the photo is discounted where it is.
* thick residue: patches at least THICK_WIDTH px across where frame t differs from the carried
  first frame by more than THICK_LEVEL grey levels. Dark holes and halos revealed behind the
  subject and smeared bands look like this; the thin misalignment lines of a good flow do not.

Both are counted in pixels per 10 000 of the frame; the worst checkpoint sets the figure
1 - exp(-max(0, A - FLOOR) / SCALE), with A = THIN_WEIGHT * thin + thick, so a clean engine take
(natural parallax, revealed background, ambient motion) stays near 0 and a take with a visible
layer defect lands near or above 0.5.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

# Seams are one or two pixels wide at the size the studio scores (frames decoded at 512 px);
# any smaller and they blur into their neighbours.
ART_SIDE = 512
CHECKPOINTS = 6
BORDER = 6  # px (at ART_SIDE) left out at the frame's edge and where new content comes in
THIN_GAIN = 2.5  # thin structure must beat this many times what the first frame has nearby
THIN_TEXTURE = 2.0  # and, on top, this many times its local texture (grass, hair, lattices)
THIN_LEVEL = 10.0  # grey levels
THIN_MIN_PIXELS = 3  # a lone pixel is noise; a speck is already a few
THICK_LEVEL = 40.0  # grey levels (any channel)
THICK_WIDTH = 7  # px: narrower differences are misalignment along edges, not patches
THIN_WEIGHT = 2.0  # a 1 px line is seen as much as a patch twice its area
FLOOR, SCALE = 3.0, 10.0  # px per 10 000


@dataclass(frozen=True)
class ArtifactStats:
    """The artifact figure (0 clean .. 1) and what it was made of, per checkpoint."""

    figure: float
    worst_frame: int
    checkpoints: np.ndarray  # frame indices compared with the first frame
    thin: np.ndarray  # thin-structure pixels per 10 000, per checkpoint
    thick: np.ndarray  # thick-residue pixels per 10 000, per checkpoint


def _to_first(camera: np.ndarray, scale: float, width: int, height: int) -> list[np.ndarray]:
    """For every frame t, the 2x3 warpAffine matrix (pixel indices) from frame t to frame 0.

    camera[t] maps frame t+1's centred coordinates into frame t's at the motion analysis size;
    scale converts its translations to this size.
    """
    cx, cy = (width - 1) / 2, (height - 1) / 2
    centre = np.array([[1, 0, cx], [0, 1, cy], [0, 0, 1]])
    uncentre = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]])
    chain = np.eye(3)
    out = [np.eye(3)[:2]]
    for ds, rot, tx, ty in camera:
        chain = chain @ np.array([[1 + ds, -rot, tx * scale], [rot, 1 + ds, ty * scale], [0, 0, 1]])
        out.append((centre @ chain @ uncentre)[:2])
    return out


def _largest(rgb: np.ndarray) -> np.ndarray:
    """The largest of the three channels, per pixel (a fraction of numpy's max over an axis)."""
    r, g, b = cv2.split(rgb)
    return cv2.max(cv2.max(r, g), b)


def _thin(rgb: np.ndarray) -> np.ndarray:
    """How far each pixel stands out from its 5x5 median, the largest over the channels."""
    return _largest(cv2.absdiff(rgb, cv2.medianBlur(rgb, 5)))


def _outlined(
    parts: Mapping[int, Sequence[np.ndarray]], t: int, scale: float, shape: tuple[int, int]
) -> np.ndarray:
    """Where the outlines listed for frame t (or the nearest frame listed) lie, as a mask."""
    nearest = min(parts, key=lambda frame: abs(frame - t))
    mask = np.zeros(shape, np.uint8)
    for outline in parts[nearest]:
        hull = cv2.convexHull(np.round(np.asarray(outline) * scale - 0.5).astype(np.int32))
        cv2.fillConvexPoly(mask, hull, 1)
    return mask > 0


def _resize(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if (frame.shape[1], frame.shape[0]) == size:
        return frame
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def analyse(
    frames: np.ndarray,
    camera: np.ndarray,
    work_scale: float,
    moving_parts: Mapping[int, Sequence[np.ndarray]] | None = None,
) -> ArtifactStats:
    """The artifact figure of T x H x W x 3 uint8 RGB frames.

    camera: the per-pair similarity (scale-1, rotation, tx, ty) from motion.analyse, measured at
    work_scale x this resolution. moving_parts: frame -> outlines (N x 2, px of these frames) of
    parts that change on their own, like eyes that blink (faces.FaceStats.moving_parts); they
    are left out, at the frame or the nearest one listed.
    """
    count, height, width = frames.shape[:3]
    fit = min(1.0, ART_SIDE / max(width, height))
    size = (max(round(width * fit), 16), max(round(height * fit), 16))
    w, h = size
    to_first = _to_first(camera, size[0] / (width * work_scale), w, h)
    checkpoints = np.unique(np.linspace(0, count - 1, CHECKPOINTS + 1).round().astype(int))[1:]

    first = np.ascontiguousarray(_resize(frames[0], size))
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
    grid_y, grid_x = np.mgrid[0:h, 0:w].astype(np.float32)
    everywhere = np.full((h, w), 255, np.uint8)
    border = max(1, round(BORDER * max(w, h) / ART_SIDE))
    shrink = np.ones((2 * border + 1, 2 * border + 1), np.uint8)
    near = np.ones((5, 5), np.uint8)
    patch = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (THICK_WIDTH, THICK_WIDTH))
    per = 1e4 / (w * h)
    thin_px = np.zeros(len(checkpoints))
    thick_px = np.zeros(len(checkpoints))
    for n, t in enumerate(checkpoints):
        frame = np.ascontiguousarray(_resize(frames[t], size))
        # 1. The first frame carried onto frame t: the camera move, then the flow for the rest.
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        moved = cv2.warpAffine(
            first, to_first[t], size, flags=flags, borderMode=cv2.BORDER_REPLICATE
        )
        seen = cv2.warpAffine(everywhere, to_first[t], size,
                              flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP)  # fmt: skip
        flow = dis.calc(
            cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), cv2.cvtColor(moved, cv2.COLOR_RGB2GRAY), None
        )
        map_x, map_y = grid_x + flow[..., 0], grid_y + flow[..., 1]
        carried = cv2.remap(moved, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        # Content that came from outside the first frame is new, not an artifact.
        seen = cv2.remap(seen, map_x, map_y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT)
        valid = cv2.erode(seen, shrink, borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0
        if moving_parts:
            valid &= ~_outlined(moving_parts, t, fit, (h, w))

        # 2. Thin structure frame t has and the carried first frame lacks.
        before = _thin(carried).astype(np.float32)
        excess = _thin(frame).astype(np.float32)
        excess -= THIN_GAIN * cv2.dilate(before, near) + THIN_TEXTURE * cv2.blur(before, (9, 9))
        lines = ((excess > THIN_LEVEL) & valid).astype(np.uint8)
        labels, stats = cv2.connectedComponentsWithStats(lines, connectivity=8)[1:3]
        big = stats[:, cv2.CC_STAT_AREA] >= THIN_MIN_PIXELS
        big[0] = False
        thin_px[n] = float(big[labels].sum()) * per

        # 3. Patches that differ strongly and are too wide to be an edge moved by a pixel.
        diff = _largest(cv2.absdiff(frame, carried))
        strong = ((diff > THICK_LEVEL) & valid).astype(np.uint8)
        thick_px[n] = float(cv2.countNonZero(cv2.morphologyEx(strong, cv2.MORPH_OPEN, patch))) * per

    amount = THIN_WEIGHT * thin_px + thick_px
    worst = int(np.argmax(amount)) if len(amount) else 0
    worst_amount = float(amount[worst]) if len(amount) else 0.0
    figure = 1.0 - math.exp(-max(0.0, worst_amount - FLOOR) / SCALE)
    return ArtifactStats(
        figure=figure,
        worst_frame=int(checkpoints[worst]) if len(checkpoints) else 0,
        checkpoints=checkpoints,
        thin=thin_px,
        thick=thick_px,
    )
