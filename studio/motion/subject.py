"""Find the photo's subject: its soft matte, the faces in it and their landmarks, and the user's edits."""

from __future__ import annotations

from dataclasses import dataclass
from types import EllipsisType

import numpy as np

from studio.motion.edits import SubjectEdit, apply_edits
from studio.motion.learned_matte import LearnedMatte
from studio.motion.matte import MIN_FACE_AREA, people_matte, subject_matte


@dataclass(frozen=True)
class Subject:
    """What the engine believes about one photo, at the size it was given.

    source says where the matte came from: "people" (learned person and face models),
    "learned" (the general learned matte, Segment Anything), "automatic" (no model), or
    "none"; "+edits" is appended when the user corrected it.
    faces are studio.vision.Face boxes and keypoints in pixels; landmarks holds each
    face's 468 mesh points (x, y, z) in pixels, float32 (468, 3), in the same order.
    """

    alpha: np.ndarray  # float32 HxW in [0, 1]
    source: str
    faces: tuple = ()
    landmarks: tuple[np.ndarray, ...] = ()


def find_subject(
    rgb: np.ndarray,
    vision,
    edits: tuple[SubjectEdit, ...] = (),
    learned: LearnedMatte | EllipsisType | None = ...,
) -> Subject:
    """The subject of an RGB uint8 photo: learned people first, else the automatic matte,
    sharpened by the general learned matte when its weights are cached.

    vision is a studio.vision.VisionModels or None (no people models available). learned is
    the general learned matte (by default the one the settings name; used only when its
    weights are in the local cache) or None for none. The automatic matte decides whether
    there is a subject at all: a photo it finds nothing in (a star field) is never prompted.
    """
    h, w = rgb.shape[:2]
    faces: list = []
    landmarks: list[np.ndarray] = []
    alpha = None
    source = "automatic"
    if vision is not None:
        faces = [
            f
            for f in vision.faces(rgb)
            if (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]) >= MIN_FACE_AREA * h * w
        ]
        alpha = people_matte(rgb, vision, faces) if faces else None
        if alpha is not None:
            source = "people"
            landmarks = [vision.landmarks(rgb, f) for f in faces]
    if alpha is None:
        alpha = subject_matte(rgb)
        model = LearnedMatte() if learned is ... else learned
        if model is not None and float(alpha.max(initial=0.0)) > 0.5 and model.available():
            sharper = model.matte(rgb, alpha)
            if sharper is not None:
                alpha, source = sharper, "learned"
    if edits:
        alpha = apply_edits(alpha, rgb, edits)
        source += "+edits"
    if float(alpha.max(initial=0.0)) <= 0.0:
        source = "none" if not edits else source
    return Subject(alpha=alpha, source=source, faces=tuple(faces), landmarks=tuple(landmarks))
