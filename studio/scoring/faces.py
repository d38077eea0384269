"""Does the face in a clip stay the same person: find it with BlazeFace, follow its face mesh, compare shape and look."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

# A face whose BlazeFace box is smaller than this share of the frame's long side gives a mesh
# too coarse to tell a person from a lookalike; face consistency is not about crowds.
MIN_FACE = 0.06
# The mesh is re-fitted at this many frames spread over the clip (one mesh is about 1 ms).
CHECKPOINTS = 12
MIN_PRESENCE = 0.5  # the mesh model's own confidence that its crop still shows a face
CROP = 64  # the aligned face crops compared for appearance are CROP x CROP
# Below this share of its points (or of its crop) in the picture, a face is not compared.
MIN_SHOWN = 0.6
# The mesh model guesses what is past the frame's edge: points this close to it (share of the
# eye distance) are left out of the comparison.
EDGE_MARGIN = 0.3
EYE_MARGIN = 0.1  # both eyes' corners must be this far inside for the face to be judged
# Shape: the RMS landmark residual after the similarity alignment, in % of the distance between
# the eyes. The same face through camera moves, breathing and a small head turn stays under
# RESIDUAL_OK (mesh noise is ~1%); a different or warped face lands past RESIDUAL_BAD.
RESIDUAL_OK, RESIDUAL_BAD = 3.5, 9.0
# Appearance: 0.5 NCC + 0.5 HOG cosine of the aligned crops; the same face stays above SAME,
# a different person lands near OTHER.
SAME, OTHER = 0.9, 0.6
SHAPE_WEIGHT = 0.5  # the rest is appearance

# MediaPipe face mesh indices: each eye's corners and its lid contour, the lips' outline and
# their inner edge. Lids move in a blink and inner lips when speaking; neither is who the
# person is, so the shape comparison leaves them out.
_RIGHT_EYE = (33, 133)
_LEFT_EYE = (263, 362)
_RIGHT_EYE_RING = (33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7)
_LEFT_EYE_RING = (263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249)
_LIDS = tuple(i for i in _RIGHT_EYE_RING + _LEFT_EYE_RING if i not in _RIGHT_EYE + _LEFT_EYE)
_MOUTH_RING = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291,
               375, 321, 405, 314, 17, 84, 181, 91, 146)  # fmt: skip
_INNER_LIPS = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308,
               191, 80, 81, 82, 13, 312, 311, 310, 415)  # fmt: skip
# Points this close to an eye's centre (share of the eye distance) follow the lids too.
_EYE_RADIUS = 0.3


@dataclass(frozen=True)
class FaceStats:
    """Per-clip face consistency (1 = same face throughout) and the frame where it is worst."""

    consistency: float
    worst_frame: int
    checkpoints: np.ndarray  # frame indices where the face was compared (frame 0 first)
    residual: np.ndarray  # landmark residual per checkpoint, % of the eye distance (nan: lost)
    similarity: np.ndarray  # appearance similarity per checkpoint (frame 0 is 1.0)
    meshes: dict[int, np.ndarray] = field(default_factory=dict)  # frame -> 468 x 2 points, px

    def moving_parts(self) -> dict[int, list[np.ndarray]]:
        """Frame -> outlines (N x 2 px) of the eyes and mouth: they blink and speak on their
        own, so a change there is life, not a layer artifact."""
        parts = {}
        for frame, points in self.meshes.items():
            eyes = points[list(_RIGHT_EYE)].mean(0), points[list(_LEFT_EYE)].mean(0)
            reach = 0.15 * float(np.hypot(*(eyes[1] - eyes[0])))
            outlines = []
            for ring in (_RIGHT_EYE_RING, _LEFT_EYE_RING, _MOUTH_RING):
                ring_points = points[list(ring)]
                centre = ring_points.mean(axis=0)
                # Grown outwards by `reach`: lids fold above the eye, lips move past their line.
                away = ring_points - centre
                away *= 1 + reach / np.maximum(np.hypot(away[:, 0], away[:, 1]), 1e-6)[:, None]
                outlines.append(centre + away)
            parts[frame] = outlines
        return parts


def _similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares 2D similarity (Umeyama) taking src points onto dst points, as a 3x3 matrix."""
    ms, md = src.mean(axis=0), dst.mean(axis=0)
    s, d = src - ms, dst - md
    # As complex numbers, a similarity is one multiplication: z -> a z + b.
    zs, zd = s[:, 0] + 1j * s[:, 1], d[:, 0] + 1j * d[:, 1]
    a = complex(np.vdot(zs, zd) / max(float(np.vdot(zs, zs).real), 1e-12))
    rot = np.array([[a.real, -a.imag], [a.imag, a.real]])
    out = np.eye(3)
    out[:2, :2] = rot
    out[:2, 2] = md - rot @ ms
    return out


def _apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ m[:2, :2].T + m[:2, 2]


def _camera_steps(camera: np.ndarray, work_scale: float, width: int, height: int) -> np.ndarray:
    """(T-1) x 3 x 3: for each pair, frame t's pixels to frame t+1's (continuous pixel coords).

    camera[t] maps frame t+1's centred work-size coordinates into frame t's, so each step is
    its inverse, with the translation brought to this resolution.
    """
    centre = np.array([[1, 0, width / 2], [0, 1, height / 2], [0, 0, 1]])
    uncentre = np.array([[1, 0, -width / 2], [0, 1, -height / 2], [0, 0, 1]])
    steps = np.zeros((len(camera), 3, 3))
    for i, (ds, rot, tx, ty) in enumerate(camera):
        back = np.array(
            [[1 + ds, -rot, tx / work_scale], [rot, 1 + ds, ty / work_scale], [0, 0, 1]]
        )
        steps[i] = centre @ np.linalg.inv(back) @ uncentre
    return steps


def _crop(
    grey: np.ndarray, to_frame: np.ndarray, size: int, border: int = cv2.BORDER_REPLICATE
) -> np.ndarray:
    """size x size crop of grey through to_frame (3x3: crop coords to continuous frame coords)."""
    # warpAffine works in pixel indices: index j is coordinate j + .5 on both sides.
    m = to_frame.copy()
    m[:2, 2] += m[:2, :2] @ np.array([0.5, 0.5]) - 0.5
    return cv2.warpAffine(grey, m[:2], (size, size),
                          flags=cv2.INTER_AREA | cv2.WARP_INVERSE_MAP,
                          borderMode=border)  # fmt: skip


def _hog(patch: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """4x4 cells x 8 unsigned orientations of the edges where mask is set: eyes, nose, mouth."""
    p = patch.astype(np.float32)
    gx = cv2.Sobel(p, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(p, cv2.CV_32F, 0, 1, ksize=3)
    mag, ang = cv2.cartToPolar(gx, gy)
    mag *= mask
    bins = (np.floor(ang * (8 / np.pi)).astype(np.int64)) % 8
    cell = patch.shape[0] // 4
    cy, cx = np.divmod(np.arange(patch.size), patch.shape[1])
    idx = ((cy // cell) * 4 + (cx // cell)).reshape(patch.shape) * 8 + bins
    hist = np.bincount(idx.ravel(), weights=mag.ravel(), minlength=128)
    return hist / (np.linalg.norm(hist) + 1e-6)


def _look(ref: np.ndarray, crop: np.ndarray, mask: np.ndarray) -> float:
    """Appearance match (0.5 NCC + 0.5 HOG cosine) of two aligned crops where mask is set."""
    keep = mask > 0
    a = ref[keep].astype(np.float64)
    b = crop[keep].astype(np.float64)
    a -= a.mean()
    b -= b.mean()
    ncc = float(a @ b) / max(float(np.sqrt((a @ a) * (b @ b))), 1e-6)
    # Sobel reads a pixel's neighbours: only gradients wholly inside the mask count.
    inner = cv2.erode(mask, np.ones((3, 3), np.uint8)).astype(np.float32)
    return 0.5 * max(ncc, 0.0) + 0.5 * float(_hog(ref, inner) @ _hog(crop, inner))


def _moved(face, m: np.ndarray):
    """The BlazeFace face carried by the similarity m: the box's centre and size, the keypoints."""
    from studio.vision import Face

    x0, y0, x1, y1 = face.box
    cx, cy = _apply(m, np.array([[(x0 + x1) / 2, (y0 + y1) / 2]]))[0]
    scale = math.sqrt(abs(np.linalg.det(m[:2, :2])))
    hw, hh = scale * (x1 - x0) / 2, scale * (y1 - y0) / 2
    kps = _apply(m, np.asarray(face.keypoints, np.float64))
    return Face(box=(cx - hw, cy - hh, cx + hw, cy + hh), score=face.score,
                keypoints=tuple((float(x), float(y)) for x, y in kps))  # fmt: skip


def _shown(points: np.ndarray, which: np.ndarray, margin: float, frame: np.ndarray) -> np.ndarray:
    """The indices in `which` whose points lie in the picture, at least margin px inside it."""
    height, width = frame.shape[:2]
    x, y = points[which, 0], points[which, 1]
    inside = (x >= margin) & (x <= width - margin) & (y >= margin) & (y <= height - margin)
    return which[inside]


def _stable_points(points: np.ndarray, eye_distance: float) -> np.ndarray:
    """Mesh indices that say who the person is: not the lids, the inner lips or the eye balls."""
    keep = np.ones(len(points), bool)
    keep[list(_LIDS + _INNER_LIPS)] = False
    for corners in (_RIGHT_EYE, _LEFT_EYE):
        centre = points[list(corners), :2].mean(axis=0)
        near = np.hypot(*(points[:, :2] - centre).T) < _EYE_RADIUS * eye_distance
        keep &= ~near
    keep[list(_RIGHT_EYE + _LEFT_EYE)] = True
    return np.flatnonzero(keep)


def analyse(
    frames: np.ndarray, camera: np.ndarray, work_scale: float, vision=...
) -> FaceStats | None:
    """Face consistency of a clip, or None when the first frame shows no face (or the face
    models are unavailable).

    frames: T x H x W x 3 uint8 RGB at any resolution. camera: the per-pair similarity
    (scale-1, rotation, tx, ty) from motion.analyse, measured at work_scale x this resolution
    and mapping frame t+1's centred coordinates into frame t's. vision: a
    studio.vision.VisionModels (by default the bundled models; None for none).
    """
    if vision is ...:
        from studio.motion.matte import shared_vision

        vision = shared_vision()
    if vision is None:
        return None
    t, height, width = frames.shape[:3]

    # 1. Find the face in the first frame and fit its mesh.
    found = [
        f
        for f in vision.faces(frames[0])
        if max(f.box[2] - f.box[0], f.box[3] - f.box[1]) >= MIN_FACE * max(width, height)
    ]
    if not found:
        return None
    face0 = max(found, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
    mesh0 = vision.mesh(frames[0], face0)
    if mesh0.presence < MIN_PRESENCE:
        return None
    points0 = mesh0.points[:, :2].astype(np.float64)
    eyes0 = np.array([points0[list(_RIGHT_EYE)].mean(0), points0[list(_LEFT_EYE)].mean(0)])
    eye_distance = float(np.hypot(*(eyes0[1] - eyes0[0])))
    eye_points = np.array(_RIGHT_EYE + _LEFT_EYE)
    eye_margin, margin = EYE_MARGIN * eye_distance, EDGE_MARGIN * eye_distance
    if len(_shown(points0, eye_points, eye_margin, frames[0])) < len(eye_points):
        return None  # the eyes are cut off by the frame: too little face to judge
    stable = _shown(points0, _stable_points(mesh0.points, eye_distance), margin, frames[0])

    # The reference crop: the detector's box (the inner face, little hair or background),
    # turned so the eyes are level; the eyes themselves are left out (a blink is not a change).
    x0, y0, x1, y1 = face0.box
    (rx, ry), (lx, ly) = face0.keypoint("right_eye"), face0.keypoint("left_eye")
    angle = math.atan2(ly - ry, lx - rx)
    k, cos, sin = max(x1 - x0, y1 - y0) / CROP, math.cos(angle), math.sin(angle)
    crop_to_first = np.array([
        [k * cos, -k * sin, (x0 + x1) / 2 - k * CROP / 2 * (cos - sin)],
        [k * sin, k * cos, (y0 + y1) / 2 - k * CROP / 2 * (sin + cos)],
        [0, 0, 1],
    ])  # fmt: skip
    ref = _crop(cv2.cvtColor(frames[0], cv2.COLOR_RGB2GRAY), crop_to_first, CROP)
    open_eyes = np.full((CROP, CROP), 255, np.uint8)
    for ring in (_RIGHT_EYE_RING, _LEFT_EYE_RING):
        hull = _apply(np.linalg.inv(crop_to_first), points0[list(ring)]) - 0.5
        cv2.fillConvexPoly(open_eyes, cv2.convexHull(np.round(hull).astype(np.int32)), 0)
    open_eyes = cv2.erode(open_eyes, np.ones((5, 5), np.uint8))
    in_view = np.full((height, width), 255, np.uint8)
    open_eyes = cv2.min(open_eyes, _crop(in_view, crop_to_first, CROP, cv2.BORDER_CONSTANT))

    # 2. Follow the face: at each checkpoint, carry the last fit by the camera path, fit the
    #    mesh there (re-detecting if the mesh lost it), and align it back to the first frame.
    steps = _camera_steps(camera, work_scale, width, height)
    checkpoints = np.unique(np.linspace(0, t - 1, CHECKPOINTS + 1).round().astype(int))
    residual = np.full(len(checkpoints), np.nan)
    looks = np.full(len(checkpoints), np.nan)
    scores = np.full(len(checkpoints), np.nan)
    residual[0], looks[0], scores[0] = 0.0, 1.0, 1.0
    meshes = {0: points0.astype(np.float32)}
    first_to_last = np.eye(3)  # frame 0 -> the last checkpoint's frame
    last = 0
    for n, i in enumerate(checkpoints[1:], start=1):
        for step in steps[last:i]:
            first_to_last = step @ first_to_last
        last = i
        carried = _moved(face0, first_to_last)
        mesh = vision.mesh(frames[i], carried)
        if mesh.presence < MIN_PRESENCE:
            mesh = _redetect(vision, frames[i], carried)
        if mesh is None:
            # A face that left the picture has not changed; one that vanished in view has.
            cx, cy = np.mean(np.reshape(carried.box, (2, 2)), axis=0)
            if 0 <= cx < width and 0 <= cy < height:
                scores[n] = looks[n] = 0.0
            continue
        points = mesh.points[:, :2].astype(np.float64)
        # Only the points in the picture: a face cut by the frame's edge is still the same face.
        shown = _shown(points, stable, margin, frames[i])
        eyes_shown = len(_shown(points, eye_points, eye_margin, frames[i])) == len(eye_points)
        if not eyes_shown or len(shown) < MIN_SHOWN * len(stable):
            continue
        to_first = _similarity(points[shown], points0[shown])
        err = _apply(to_first, points[shown]) - points0[shown]
        residual[n] = 100.0 * float(np.sqrt((err**2).sum(axis=1).mean())) / eye_distance
        first_to_last = np.linalg.inv(to_first)
        meshes[int(i)] = points.astype(np.float32)

        crop_to_frame = first_to_last @ crop_to_first
        crop = _crop(cv2.cvtColor(frames[i], cv2.COLOR_RGB2GRAY), crop_to_frame, CROP)
        mask = cv2.min(open_eyes, _crop(in_view, crop_to_frame, CROP, cv2.BORDER_CONSTANT))
        mask = (mask == 255).astype(np.uint8)
        shape = np.clip((RESIDUAL_BAD - residual[n]) / (RESIDUAL_BAD - RESIDUAL_OK), 0.0, 1.0)
        if cv2.countNonZero(mask) < MIN_SHOWN * cv2.countNonZero(open_eyes):
            scores[n] = shape
            continue
        looks[n] = _look(ref, crop, mask)
        look = np.clip((looks[n] - OTHER) / (SAME - OTHER), 0.0, 1.0)
        scores[n] = SHAPE_WEIGHT * shape + (1 - SHAPE_WEIGHT) * look

    # 3. The clip is as consistent as its worst checkpoint.
    if len(checkpoints) > 1 and np.all(np.isnan(scores[1:])):
        return None
    worst = int(np.nanargmin(scores))
    return FaceStats(
        consistency=float(scores[worst]),
        worst_frame=int(checkpoints[worst]),
        checkpoints=checkpoints,
        residual=residual,
        similarity=looks,
        meshes=meshes,
    )


def _redetect(vision, frame: np.ndarray, carried):
    """The mesh of the detected face nearest the carried one, or None when none is near."""
    from studio.blazeface import box_iou

    near = [f for f in vision.faces(frame) if box_iou(f.box, carried.box) > 0.2]
    if not near:
        return None
    mesh = vision.mesh(frame, max(near, key=lambda f: box_iou(f.box, carried.box)))
    return mesh if mesh.presence >= MIN_PRESENCE else None
