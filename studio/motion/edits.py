"""The user's corrections to the subject matte: brush strokes that add or remove areas, as plain data."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from studio.errors import JobError
from studio.motion.filters import guided_filter

MAX_EDITS = 200
MAX_POINTS = 2000  # per stroke
MODES = ("add", "remove")


@dataclass(frozen=True)
class SubjectEdit:
    """One stroke: mode "add" or "remove", points (x, y) in 0..1 of the photo's width and
    height, radius as a share of the photo's longer side. A click is a one-point stroke."""

    mode: str
    points: tuple[tuple[float, float], ...]
    radius: float = 0.03

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "points": [list(p) for p in self.points], "radius": self.radius}


def _number_in(value: Any, lo: float, hi: float) -> bool:
    """A real number (not a bool, NaN or infinity) between lo and hi."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value) and lo <= value <= hi
    except OverflowError:  # an integer too large for a float
        return False


def parse_edits(data: Any) -> tuple[SubjectEdit, ...]:
    """Turn a job's "subject_edits" (a list of dicts, or SubjectEdits) into checked edits."""
    if data is None or data == ():
        return ()
    if not isinstance(data, (list, tuple)):
        raise JobError("Subject corrections must be a list of strokes.")
    if len(data) > MAX_EDITS:
        raise JobError(f"At most {MAX_EDITS} subject corrections are allowed.")
    edits = []
    for item in data:
        if isinstance(item, SubjectEdit):
            item = item.to_dict()
        if not isinstance(item, dict):
            raise JobError("Each subject correction must be a stroke with a mode and points.")
        mode = item.get("mode")
        if mode not in MODES:
            raise JobError("A subject correction's mode must be 'add' or 'remove'.")
        points = item.get("points")
        if not isinstance(points, (list, tuple)) or not 1 <= len(points) <= MAX_POINTS:
            raise JobError(f"A subject correction needs 1 to {MAX_POINTS} points.")
        clean = []
        for p in points:
            # A little outside the photo is allowed: a brush dabbed at its very edge.
            if (
                not isinstance(p, (list, tuple))
                or len(p) != 2
                or not all(_number_in(v, -0.5, 1.5) for v in p)
            ):
                raise JobError("Subject correction points must be (x, y) pairs between 0 and 1.")
            clean.append((float(p[0]), float(p[1])))
        radius = item.get("radius", 0.03)
        if not _number_in(radius, 0.002, 0.5):
            raise JobError("A subject correction's radius must be between 0.002 and 0.5.")
        edits.append(SubjectEdit(mode, tuple(clean), float(radius)))
    return tuple(edits)


MAX_FILE_BYTES = 16 * 1024 * 1024  # 200 strokes of 2000 points are about 10 MB of JSON


def load_edits(path: str | os.PathLike[str]) -> tuple[SubjectEdit, ...]:
    """Corrections from a JSON file: a list of strokes, a job ({"subject_edits": [...]}) or a
    clip's manifest ({"job": {...}}), so a past clip's corrections can be used again."""
    name = Path(path).name
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
    except OSError:
        raise JobError(f"The corrections file {name} cannot be read.") from None
    if len(raw) > MAX_FILE_BYTES:
        raise JobError(f"The corrections file {name} is larger than {MAX_FILE_BYTES >> 20} MB.")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise JobError(f"The corrections file {name} is not valid JSON.") from None
    if isinstance(data, dict) and isinstance(data.get("job"), dict):
        data = data["job"]
    if isinstance(data, dict):
        data = data.get("subject_edits", ())
    return parse_edits(data)


def stroke_mask(edit: SubjectEdit, h: int, w: int) -> np.ndarray:
    """The stroke drawn as a uint8 0/1 mask at (h, w)."""
    mask = np.zeros((h, w), np.uint8)
    r = max(1, int(round(edit.radius * max(h, w))))
    pts = np.array([[x * w, y * h] for x, y in edit.points], np.float64)
    pts = np.round(pts).astype(np.int32)
    if len(pts) == 1:
        cv2.circle(mask, tuple(int(v) for v in pts[0]), r, 1, -1, cv2.LINE_8)
    else:
        cv2.polylines(mask, [pts.reshape(-1, 1, 2)], False, 1, 2 * r, cv2.LINE_8)
        for p in pts[[0, -1]]:
            cv2.circle(mask, tuple(int(v) for v in p), r, 1, -1, cv2.LINE_8)
    return mask


def apply_edits(alpha: np.ndarray, rgb: np.ndarray, edits: tuple[SubjectEdit, ...]) -> np.ndarray:
    """The matte with the strokes applied in order, their edges snapped to the photo's own.

    Each stroke sets its area to subject (add) or background (remove); the changed region's
    edge then follows the photo through a guided filter, so a rough brush along a shoulder
    gives the shoulder's outline rather than the brush's circle.
    """
    if not edits:
        return alpha
    h, w = alpha.shape
    out = alpha.astype(np.float32).copy()
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    radius = max(2, int(round(0.006 * max(h, w))))
    for edit in edits:
        m = stroke_mask(edit, h, w).astype(np.float32)
        soft = np.clip(guided_filter(gray, m, radius, 1e-3), 0.0, 1.0)
        # Inside the stroke the decision is the user's; at its rim the photo's edges decide.
        weight = np.maximum(cv2.erode(m, np.ones((3, 3), np.uint8)), soft)
        target = 1.0 if edit.mode == "add" else 0.0
        out = out * (1.0 - weight) + target * weight
    return np.clip(out, 0.0, 1.0).astype(np.float32)
