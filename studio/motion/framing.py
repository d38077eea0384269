"""Subject-aware framing: where the frame sits on the photo so faces and products stay in it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from studio.errors import JobError
from studio.motion.camera import CameraPath
from studio.motion.matte import MAX_COVERAGE

Box = tuple[float, float, float, float]  # x0, y0, x1, y1
Point = tuple[float, float]

# Where a face's centre sits, as a fraction of the frame height from the top: on the upper
# third in a portrait frame; lower in a landscape one, where the third line would leave
# the face pressed against the top with little of the person under it. Between 4:5 and
# 16:9 the row moves linearly with the aspect ratio.
FACE_ROW_PORTRAIT, FACE_ROW_LANDSCAPE = 0.30, 0.38
PORTRAIT_RATIO, LANDSCAPE_RATIO = 4 / 5, 16 / 9
# Room kept around a face, as fractions of its box (left, top, right, bottom): a face
# detector's box stops at the forehead and the chin, the hair and ears lie outside it.
FACE_ROOM = (0.15, 0.35, 0.15, 0.15)
# A job may pin the framing to a point of the photo: params["framing"] = [x, y] in 0..1.
FRAMING_PARAM = "framing"
# The smallest parallax factor a near layer's reach is divided by (as the rig bounds it).
MIN_DOLLY_FACTOR = 0.2


@dataclass(frozen=True)
class Aim:
    """One way to frame: `point` at `anchor` (fractions of the frame), `keep` whole in it.

    depth is the range of parallax weights (depth minus the focus plane's) of what keep
    holds, so its sides are followed through every layer's motion.
    """

    point: Point
    anchor: Point
    keep: Box | None = None
    depth: tuple[float, float] = (0.0, 0.0)


@dataclass(frozen=True)
class Framing:
    """How one photo is framed for one output shape, in the pixels of the photo it was made on.

    aims are tried in order, separately along each axis: the first whose keep box fits the
    frame over the whole camera move (and whose frame stays on the photo) is used, so a
    wide product that cannot fit across is still kept whole top to bottom. The last aim
    keeps nothing and always fits. Push-ins and pull-outs zoom towards the point of the aims
    used (push, before the move is known).
    """

    kind: str  # "explicit", "face", "subject" or "focus"
    aims: tuple[Aim, ...]
    faces: tuple[Box, ...] = ()
    subject_box: Box | None = None

    @property
    def push(self) -> Point:
        return self.aims[0].point

    def push_for(self, used: tuple[int, int]) -> Point:
        """The point to zoom towards once place() has said which aim each axis honours."""
        return self.aims[used[0]].point[0], self.aims[used[1]].point[1]


@dataclass(frozen=True)
class _Facts:
    """What framing reads about a photo's subject, in the pixels of one grid."""

    size: tuple[int, int]
    box: Box | None
    centre: Point | None
    faces: tuple[Box, ...]
    scene: object | None = None  # the Scene, when there is one, for the subject's depth


def face_row(ratio: float) -> float:
    """The height (fraction from the top) a face's centre sits at in a frame of this w/h."""
    t = (ratio - PORTRAIT_RATIO) / (LANDSCAPE_RATIO - PORTRAIT_RATIO)
    t = min(max(t, 0.0), 1.0)
    return FACE_ROW_PORTRAIT + t * (FACE_ROW_LANDSCAPE - FACE_ROW_PORTRAIT)


def _centre(box: Box) -> Point:
    return 0.5 * (box[0] + box[2]), 0.5 * (box[1] + box[3])


def _clip_box(box: Box, size: tuple[int, int]) -> Box:
    w, h = size
    return (max(box[0], 0.0), max(box[1], 0.0), min(box[2], float(w)), min(box[3], float(h)))


def _with_room(box: Box, size: tuple[int, int]) -> Box:
    bw, bh = box[2] - box[0], box[3] - box[1]
    left, top, right, bottom = FACE_ROOM
    grown = (box[0] - left * bw, box[1] - top * bh, box[2] + right * bw, box[3] + bottom * bh)
    return _clip_box(grown, size)


def _union(boxes: Sequence[Box]) -> Box:
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def _facts(source: object) -> _Facts:
    """Subject facts from a Scene (working px) or a studio.motion.subject.Subject (its px)."""
    faces = tuple(tuple(float(v) for v in f.box) for f in getattr(source, "faces", ()))
    if hasattr(source, "subject_box"):  # a Scene
        h, w = source.image.shape[:2]
        if not source.has_subject:
            return _Facts((w, h), None, None, faces, source)
        box = tuple(float(v) for v in source.subject_box)
        return _Facts((w, h), box, tuple(source.subject_center), faces, source)
    alpha = np.asarray(source.alpha, np.float32)
    h, w = alpha.shape[:2]
    # The same test build_scene makes: a matte of a few specks, or of nearly everything,
    # is no subject.
    coverage = float(alpha.mean()) if alpha.size else 0.0
    if not (0.003 < coverage < MAX_COVERAGE and float(alpha.max()) > 0.5):
        return _Facts((w, h), None, None, faces)
    ys, xs = np.nonzero(alpha > 0.5)
    box = (float(xs.min()), float(ys.min()), float(xs.max()) + 1.0, float(ys.max()) + 1.0)
    total = float(alpha.sum())
    centre = (
        float(alpha.sum(axis=0) @ np.arange(w) / total),
        float(alpha.sum(axis=1) @ np.arange(h) / total),
    )
    return _Facts((w, h), box, centre, faces)


def _depth_range(facts: _Facts, box: Box) -> tuple[float, float]:
    """Parallax weights the rig gives what lies in box (0 without a scene)."""
    scene = facts.scene
    if scene is None:
        return 0.0, 0.0
    x0, y0 = max(int(math.floor(box[0])), 0), max(int(math.floor(box[1])), 0)
    x1, y1 = int(math.ceil(box[2])), int(math.ceil(box[3]))
    if x1 <= x0 or y1 <= y0:
        return 0.0, 0.0
    if scene.has_subject:
        depth = scene.depth_fg[y0:y1, x0:x1]
        inside = scene.alpha[y0:y1, x0:x1] > 0.5
        if inside.any():
            depth = depth[inside]
    else:
        depth = scene.depth[y0:y1, x0:x1]
    d = float(scene.subject_depth)
    return float(depth.min()) - d, float(depth.max()) - d


def explicit_point(params: dict) -> Point | None:
    """The framing point a job pinned (params["framing"], 0..1 photo coordinates), or None."""
    value = params.get(FRAMING_PARAM) if isinstance(params, dict) else None
    if value is None:
        return None
    try:
        x, y = (float(v) for v in value)
    except (TypeError, ValueError, OverflowError):  # 10**400 overflows a float
        x = y = math.nan
    if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
        raise JobError("The framing point must be two numbers between 0 and 1 (across, down).")
    return x, y


def choose_framing(
    source: object,
    out_size: tuple[int, int],
    focus: Point = (0.5, 0.5),
    explicit: Point | None = None,
) -> Framing:
    """Pure: how to frame a photo's subject (a Scene, or a Subject) in an output of out_size.

    explicit (0..1 of the photo) wins over everything: the user placed it. Then faces: the
    face's centre sits on face_row() of the frame, centred across, never cut. Then a subject
    without faces: kept whole if it fits, else centred on its centre of mass. With no subject
    the frame centres on focus (0..1 of the photo), the plan's own point.
    """
    return _choose(_facts(source), out_size, focus, explicit)


def _choose(
    facts: _Facts, out_size: tuple[int, int], focus: Point, explicit: Point | None
) -> Framing:
    w, h = facts.size

    def photo_point(p: Point) -> Point:
        return float(p[0]) * w - 0.5, float(p[1]) * h - 0.5

    if explicit is not None:
        point = photo_point(explicit)
        return Framing("explicit", (Aim(point, (0.5, 0.5)),), facts.faces, facts.box)
    if facts.faces:
        row = face_row(out_size[0] / max(out_size[1], 1))
        largest = max(facts.faces, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
        aims = []
        if len(facts.faces) > 1:
            group = _union([_with_room(f, facts.size) for f in facts.faces])
            aims.append(Aim(_centre(group), (0.5, row), group, _depth_range(facts, group)))
        roomy = _with_room(largest, facts.size)
        depth = _depth_range(facts, roomy)
        aims.append(Aim(_centre(largest), (0.5, row), roomy, depth))
        aims.append(Aim(_centre(largest), (0.5, row), largest, depth))
        aims.append(Aim(_centre(largest), (0.5, 0.5)))  # a face larger than the frame
        return Framing("face", tuple(aims), facts.faces, facts.box)
    if facts.box is not None:
        box = facts.box
        aims = (
            Aim(_centre(box), (0.5, 0.5), box, _depth_range(facts, box)),
            Aim(facts.centre, (0.5, 0.5)),
        )
        return Framing("subject", aims, (), box)
    point = photo_point(focus)
    return Framing("focus", (Aim(point, (0.5, 0.5)),))


def framing_for(scene: object, plan: object) -> Framing:
    """The framing a plan gets on a scene: its pinned point, else the subject, else its focus.

    A preset's focus (portraits say [0.5, 0.4]) is written without seeing the photo, so a
    face or subject found in it wins; a point the job pins is the user's and wins over both.
    """
    return choose_framing(
        scene,
        (int(plan.width), int(plan.height)),
        tuple(plan.camera.focus),
        explicit_point(plan.params),
    )


def _axis(
    aims: Sequence[Aim],
    k: int,
    n: int,
    sc: float,
    shift: np.ndarray,
    slide: np.ndarray,
    path: CameraPath,
    bounds: tuple[float, float],
    room: float,
) -> tuple[float, int]:
    """The frame centre along one axis (photo px) and the index of the aim it honours.

    A point S at parallax weight w shows at ((S - C) / sc - shift + w slide) z / (1 - w dolly)
    from the frame centre, so keeping S inside for every frame bounds C from both sides;
    the bounds are linear in w, so the two ends of the keep box's depth range suffice.
    """
    lo_p, hi_p = bounds
    half = 0.5 * n - room
    for index, aim in enumerate(aims):
        want = aim.point[k] - (aim.anchor[k] - 0.5) * n * sc
        if aim.keep is None:
            return float(np.clip(want, lo_p, hi_p)), index
        left, right = -math.inf, math.inf
        for w in aim.depth:
            reach = half * np.maximum(1.0 - w * path.dolly, MIN_DOLLY_FACTOR) / path.zoom
            left = max(left, float((shift - w * slide - reach).max()))
            right = min(right, float((shift - w * slide + reach).min()))
        lo = max(aim.keep[k + 2] - sc * right, lo_p)
        hi = min(aim.keep[k] - sc * left, hi_p)
        if lo <= hi:
            return float(np.clip(want, lo, hi)), index
    last = aims[-1].point[k]
    return float(np.clip(last, lo_p, hi_p)), len(aims) - 1


def place(
    framing: Framing,
    path: CameraPath,
    sc: float,
    out_size: tuple[int, int],
    bounds: tuple[tuple[float, float], tuple[float, float]],
) -> tuple[float, float, tuple[int, int]]:
    """Pure: the frame centre (X0, Y0) in photo px for a camera path at scale sc (photo px
    per output px), within bounds (the centres that keep every sample on the photo), and the
    aim used along each axis. The photo's edges win: a subject the move cannot keep whole
    without showing past the photo is kept as much as they allow."""
    W, H = out_size
    # Roll turns the frame a few thousandths of a radian: its corners sweep this far.
    turn = float(np.abs(np.sin(path.roll) / path.zoom).max())
    x0, ix = _axis(framing.aims, 0, W, sc, path.cx, path.px, path, bounds[0], turn * H / 2 + 0.5)
    y0, iy = _axis(framing.aims, 1, H, sc, path.cy, path.py, path, bounds[1], turn * W / 2 + 0.5)
    return x0, y0, (ix, iy)


def project_box(
    path: CameraPath,
    sc: float,
    origin: Point,
    out_size: tuple[int, int],
    box: Box,
    depth: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """Where a photo box lands in every frame: (frames, 4) x0, y0, x1, y1 in output px from
    the frame's top-left, the bounds of its corners at both ends of its parallax range."""
    W, H = out_size
    z, d = path.zoom[:, None], path.dolly[:, None]
    cos, sin = np.cos(path.roll)[:, None], np.sin(path.roll)[:, None]
    xs, ys = [], []
    for w in depth:
        for sx, sy in ((box[0], box[1]), (box[2], box[1]), (box[0], box[3]), (box[2], box[3])):
            # Invert the rig's map: u = rotation-and-scale of the screen offset.
            ux = (sx - origin[0]) / sc + w * path.px[:, None] - path.cx[:, None]
            uy = (sy - origin[1]) / sc + w * path.py[:, None] - path.cy[:, None]
            k = (cos - w * d) / z
            s = sin / z
            det = k * k + s * s
            xs.append((k * ux + s * uy) / det)
            ys.append((k * uy - s * ux) / det)
    x = np.concatenate(xs, axis=1) + W / 2
    y = np.concatenate(ys, axis=1) + H / 2
    return np.stack([x.min(axis=1), y.min(axis=1), x.max(axis=1), y.max(axis=1)], axis=1)


def _ratio(out_aspect: float | str | tuple[int, int]) -> float:
    if isinstance(out_aspect, str):
        a, _, b = out_aspect.partition(":")
        ratio = float(a) / float(b)
    elif isinstance(out_aspect, tuple | list):
        ratio = float(out_aspect[0]) / float(out_aspect[1])
    else:
        ratio = float(out_aspect)
    if not math.isfinite(ratio) or ratio <= 0:
        raise ValueError(f"aspect {out_aspect!r} is not a positive width:height")
    return ratio


def _still(frames: int = 1) -> CameraPath:
    zero = np.zeros(frames)
    return CameraPath(np.ones(frames), zero, zero, zero, zero, zero, zero)


def crop_for(
    scene_or_subject: object,
    photo_size: tuple[int, int],
    out_aspect: float | str | tuple[int, int],
) -> tuple[int, int, int, int]:
    """The largest rectangle of out_aspect (w/h, "9:16" or (w, h)) in a picture of
    photo_size showing the same view as the scene's photo, placed by choose_framing:
    (x, y, w, h) in photo pixels. For cutting a model's take to a platform's shape."""
    pw, ph = int(photo_size[0]), int(photo_size[1])
    ratio = _ratio(out_aspect)
    if pw / ph > ratio:
        cw, ch = min(pw, max(1, round(ph * ratio))), ph
    else:
        cw, ch = pw, min(ph, max(1, round(pw / ratio)))
    facts = _facts(scene_or_subject)
    framing = _choose(facts, (cw, ch), (0.5, 0.5), None)
    gw, gh = facts.size
    sx, sy = pw / gw, ph / gh

    # Here coordinates run along pixel edges (the crop [x, x + cw) centres on x + cw / 2);
    # points were found at pixel centres.
    def scaled(p: Point) -> Point:
        return (p[0] + 0.5) * sx, (p[1] + 0.5) * sy

    def stretched(box: Box | None) -> Box | None:
        return None if box is None else (box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy)

    aims = tuple(Aim(scaled(a.point), a.anchor, stretched(a.keep)) for a in framing.aims)
    photo = Framing(framing.kind, aims)
    bounds = ((cw / 2, pw - cw / 2), (ch / 2, ph - ch / 2))
    cx, cy, _ = place(photo, _still(), 1.0, (cw, ch), bounds)
    x = int(np.clip(round(cx - cw / 2), 0, pw - cw))
    y = int(np.clip(round(cy - ch / 2), 0, ph - ch))
    return x, y, cw, ch
