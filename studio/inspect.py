"""What the engine believes about a photo (subject matte, depth, faces), as files and as an overlay."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from studio.backends import get_backend
from studio.backends.base import RenderContext
from studio.encode import write_failure, write_together
from studio.images import load_photo
from studio.motion.depth import HeuristicDepth
from studio.motion.edits import SubjectEdit, stroke_mask
from studio.motion.scene import OVERSAMPLE, Scene, build_scene
from studio.plan import VariantPlan
from studio.settings import Settings
from studio.vision import KEYPOINT_NAMES, Face

PREVIEW_SIDE = 512  # the studio's Subject view: fast enough to redraw on every click
FILES = ("matte.png", "depth.png", "faces.json", "overlay.png")

# Overlay colours (RGB): the subject tinted azure and outlined in yellow, faces in magenta.
TINT, OUTLINE, FACE, MESH = (40, 160, 255), (255, 221, 0), (255, 40, 200), (150, 255, 150)
ADD, REMOVE = (60, 230, 90), (255, 70, 70)


@dataclass(frozen=True)
class Beliefs:
    """The engine's view of one photo, at the photo's own size.

    alpha is the subject matte the engine animates (all zero when it keeps no subject layer
    and moves the photo as one); depth is 1 = near; faces and landmarks are in photo pixels.
    """

    alpha: np.ndarray  # float32 HxW in [0, 1]
    depth: np.ndarray  # float32 HxW in [0, 1]
    source: str  # studio.motion.subject.Subject.source, or "none"
    subject_layer: bool
    faces: tuple[Face, ...] = ()
    landmarks: tuple[np.ndarray, ...] = ()


def _plan(width: float, height: float) -> VariantPlan:
    # Two frames are never rendered: the plan only tells build_scene how large to work.
    return VariantPlan(index=0, seed=0, width=max(2, round(width)), height=max(2, round(height)),
                       frames=2, fps=24)  # fmt: skip


def beliefs_from_scene(scene: Scene, size: tuple[int, int]) -> Beliefs:
    """The scene's matte, depth and faces brought from working resolution to size (w, h)."""
    w, h = size
    wh, ww = scene.alpha.shape
    sx, sy = w / ww, h / wh

    def back(a: np.ndarray) -> np.ndarray:
        interp = cv2.INTER_AREA if ww * wh > w * h else cv2.INTER_LINEAR
        out = a if (ww, wh) == (w, h) else cv2.resize(a, (w, h), interpolation=interp)
        return np.clip(out, 0.0, 1.0).astype(np.float32)

    faces = tuple(
        Face(
            box=(f.box[0] * sx, f.box[1] * sy, f.box[2] * sx, f.box[3] * sy),
            score=f.score,
            keypoints=tuple((x * sx, y * sy) for x, y in f.keypoints),
        )
        for f in scene.faces
    )
    scale = np.array([sx, sy, sx], np.float32)  # mesh z is on the same scale as x
    landmarks = tuple(np.asarray(m, np.float32) * scale for m in scene.landmarks)
    return Beliefs(back(scene.alpha), back(scene.depth), scene.subject_source,
                   scene.has_subject, faces, landmarks)  # fmt: skip


def photo_beliefs(
    rgb: np.ndarray, settings: Settings, edits: tuple[SubjectEdit, ...] = ()
) -> Beliefs:
    """What the engine believes about a photo: its own prepare() with a plan at the photo's
    size, the depth source the studio is set to, and the user's corrections."""
    h, w = rgb.shape[:2]
    scene = get_backend("engine", settings).prepare(rgb, [_plan(w, h)], RenderContext(), edits)
    return beliefs_from_scene(scene, (w, h))


def preview_beliefs(
    rgb: np.ndarray, edits: tuple[SubjectEdit, ...] = (), vision: Any = ...
) -> Beliefs:
    """The engine's subject for a small copy of a photo, quickly: the working image is the
    copy itself, and depth (which the matte does not depend on) is the cheap heuristic.
    vision as for build_scene: the bundled people and face models by default."""
    h, w = rgb.shape[:2]
    plan = _plan(w / OVERSAMPLE, h / OVERSAMPLE)
    scene = build_scene(rgb, [plan], HeuristicDepth(), vision=vision, edits=tuple(edits))
    return beliefs_from_scene(scene, (w, h))


def overlay(rgb: np.ndarray, beliefs: Beliefs, edits: tuple[SubjectEdit, ...] = ()) -> np.ndarray:
    """The photo as the engine sees it: background dimmed, the subject tinted and outlined,
    faces boxed with their keypoints and mesh, and the user's corrections circled."""
    h, w = rgb.shape[:2]
    t = max(1, round(max(h, w) / 256))
    a = beliefs.alpha[:, :, None]
    img = rgb.astype(np.float32)
    img = img * (1.0 - 0.5 * (1.0 - a)) * (1.0 - 0.4 * a) + np.float32(TINT) * 0.4 * a
    out = np.ascontiguousarray(np.clip(img + 0.5, 0, 255).astype(np.uint8))
    if beliefs.subject_layer:
        hard = (beliefs.alpha > 0.5).astype(np.uint8)
        contours, _ = cv2.findContours(hard, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(out, contours, -1, OUTLINE, t, cv2.LINE_AA)
    for mesh in beliefs.landmarks:
        for x, y, _ in np.round(mesh).astype(int):
            if 0 <= x < w and 0 <= y < h:
                out[y, x] = MESH
    for face in beliefs.faces:
        x0, y0, x1, y1 = (round(v) for v in face.box)
        cv2.rectangle(out, (x0, y0), (x1, y1), FACE, t, cv2.LINE_AA)
        for x, y in face.keypoints:
            cv2.circle(out, (round(x), round(y)), 2 * t, FACE, -1, cv2.LINE_AA)
    for edit in edits:
        # The stroke's rim, so the user sees where each correction went.
        rim = stroke_mask(edit, h, w)
        rim = rim - cv2.erode(rim, np.ones((3, 3), np.uint8))
        out[rim > 0] = ADD if edit.mode == "add" else REMOVE
    return out


def describe(beliefs: Beliefs, edits: tuple[SubjectEdit, ...] = ()) -> str:
    """One line for the Subject view: where the matte came from, faces, corrections."""
    n = len(beliefs.faces)
    faces = "no face found" if n == 0 else f"{n} face{'s' if n != 1 else ''} found"
    kind = beliefs.source.removesuffix("+edits")
    if not beliefs.subject_layer:
        text = f"No subject layer ({faces}): the engine moves the whole photo as one."
    elif kind == "people":
        text = f"Subject: the person matte ({faces})."
    else:
        text = f"Subject: the automatic matte ({faces})."
    if edits:
        text += f" {len(edits)} correction{'s' if len(edits) != 1 else ''}."
    return text


def faces_record(
    beliefs: Beliefs, size: tuple[int, int], edits: tuple[SubjectEdit, ...] = ()
) -> dict[str, Any]:
    """faces.json: each face's box, score, six keypoints and 468 landmarks in photo pixels,
    plus where the matte came from."""

    def r(v: float) -> float:
        return round(float(v), 2)

    faces = []
    for i, face in enumerate(beliefs.faces):
        mesh = beliefs.landmarks[i] if i < len(beliefs.landmarks) else None
        faces.append({
            "box": [r(v) for v in face.box],
            "score": round(float(face.score), 4),
            "keypoints": {name: [r(x), r(y)] for name, (x, y) in zip(KEYPOINT_NAMES, face.keypoints,
                                                                     strict=False)},
            "landmarks": [[r(x), r(y), r(z)] for x, y, z in mesh] if mesh is not None else [],
        })  # fmt: skip
    return {
        "photo": {"width": size[0], "height": size[1]},
        "matte": {
            "source": beliefs.source,
            "subject_layer": beliefs.subject_layer,
            "coverage": round(float(beliefs.alpha.mean()), 4),
        },
        "edits": [e.to_dict() for e in edits],
        "faces": faces,
    }


def _png(image: np.ndarray) -> bytes:
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise ValueError("could not encode a PNG")
    return data.tobytes()


def inspect_photo(
    photo_path: str | Path, out_dir: str | Path, settings: Settings,
    edits: tuple[SubjectEdit, ...] = (),
) -> list[Path]:  # fmt: skip
    """Write matte.png, depth.png, faces.json and overlay.png for a photo into out_dir.

    The four files appear together or not at all: a photo that cannot be used raises its
    ImageError before anything is written, and a failed write leaves no file behind.
    """
    # 1. The photo, as a job would read it (EXIF rotation, colour, size limits).
    photo = load_photo(photo_path, max_bytes=settings.max_upload_mb * 1024 * 1024)
    h, w = photo.rgb.shape[:2]

    # 2. The engine's beliefs, at the photo's size.
    beliefs = photo_beliefs(photo.rgb, settings, edits)

    # 3. The files, each encoded before the folder is touched.
    matte = np.clip(beliefs.alpha * 255.0 + 0.5, 0, 255).astype(np.uint8)
    depth = np.clip(beliefs.depth * 65535.0 + 0.5, 0, 65535).astype(np.uint16)
    contents = {
        "matte.png": _png(matte),
        "depth.png": _png(depth),
        "overlay.png": _png(overlay(photo.rgb, beliefs, edits)),
    }
    record = faces_record(beliefs, (w, h), edits)

    # 4. Stage all four under temp names, then give them their names.
    out = Path(out_dir)
    created = not out.exists()
    try:
        return write_together(
            [(out / name, record if name == "faces.json" else contents[name]) for name in FILES]
        )
    except BaseException as exc:
        if created:
            with contextlib.suppress(OSError):
                out.rmdir()
        if isinstance(exc, OSError):
            raise write_failure(out / "matte.png", exc, "files") from exc
        raise
