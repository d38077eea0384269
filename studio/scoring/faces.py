"""Does the face in a clip stay the same person: detect it once, follow it, compare every crop to the first."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import cv2
import numpy as np

# Haar runs on the first frame at this long side: ~10 ms, and finds faces down to about a
# ninth of the frame height. Smaller faces are not what face consistency is about.
DETECT_SIDE = 320
MIN_FACE = 20
CROP = 64  # face crops are compared at CROP x CROP
SEARCH = 3  # px of slack (at CROP size) when lining a crop up with the reference
# Appearance similarity (0.5 NCC + 0.5 HOG cosine) of the same face through camera moves stays
# above SAME; a different person lands near OTHER. Consistency maps that span onto 1..0.
SAME, OTHER = 0.92, 0.55
APPEARANCE_WEIGHT = 0.8  # the rest is geometry: does the detector still agree with the track
CHECKPOINTS = 4  # re-detections along the clip for the geometry check


@dataclass(frozen=True)
class FaceStats:
    """Per-clip face consistency (1 = same face throughout) and the frame where it is worst."""

    consistency: float
    worst_frame: int
    similarity: np.ndarray  # appearance similarity per frame (frame 0 is 1.0)


_local = threading.local()


def _cascade() -> cv2.CascadeClassifier:
    # Ships inside opencv-python-headless, so no download and no model manager involvement.
    # One per thread: a CascadeClassifier is not thread-safe, and the variants of a job are
    # scored in parallel threads (sharing one fails inside detectMultiScale).
    cascade = getattr(_local, "cascade", None)
    if cascade is None:
        path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
        cascade = _local.cascade = cv2.CascadeClassifier(path)
    return cascade


def _detect(gray: np.ndarray, min_size: int = MIN_FACE, max_size: int = 0) -> np.ndarray | None:
    """Largest frontal face as (x, y, w, h) in the given image's pixels, or None."""
    faces = _cascade().detectMultiScale(
        cv2.equalizeHist(gray),
        scaleFactor=1.15,
        minNeighbors=5,
        minSize=(min_size, min_size),
        maxSize=(max_size, max_size),
    )
    if len(faces) == 0:
        return None
    return np.asarray(max(faces, key=lambda f: f[2] * f[3]), np.float64)


def _crop(frame: np.ndarray, box: np.ndarray, pad: float) -> np.ndarray:
    """Grey square crop around box (x, y, w, h) grown by pad per side, CROP px (+ SEARCH if padded)."""
    x, y, w, h = box
    half = max(w, h) * (1 + 2 * pad) / 2
    cx, cy = x + w / 2, y + h / 2
    out = CROP + 2 * SEARCH if pad else CROP
    # Integer bounds are up to half a source pixel off; the SEARCH slack absorbs that.
    x0, y0 = round(cx - half), round(cy - half)
    x1, y1 = round(cx + half), round(cy + half)
    fh, fw = frame.shape[:2]
    if x0 < 0 or y0 < 0 or x1 > fw or y1 > fh:  # the face is leaving the frame: pad by edge
        frame = cv2.copyMakeBorder(
            np.ascontiguousarray(frame[max(y0, 0) : min(y1, fh), max(x0, 0) : min(x1, fw)]),
            max(-y0, 0),
            max(y1 - fh, 0),
            max(-x0, 0),
            max(x1 - fw, 0),
            cv2.BORDER_REPLICATE,
        )
        x1, y1, x0, y0 = x1 - x0, y1 - y0, 0, 0
    roi = cv2.cvtColor(np.ascontiguousarray(frame[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY)
    return cv2.resize(roi, (out, out), interpolation=cv2.INTER_AREA)


def _hog(patch: np.ndarray) -> np.ndarray:
    """4x4 cells x 8 unsigned orientations: where the edges of eyes, nose and mouth are."""
    p = patch.astype(np.float32)
    gx = cv2.Sobel(p, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(p, cv2.CV_32F, 0, 1, ksize=3)
    mag, ang = cv2.cartToPolar(gx, gy)
    bins = (np.floor(ang * (8 / np.pi)).astype(np.int64)) % 8
    cell = patch.shape[0] // 4
    cy, cx = np.divmod(np.arange(patch.size), patch.shape[1])
    idx = ((cy // cell) * 4 + (cx // cell)).reshape(patch.shape) * 8 + bins
    hist = np.bincount(idx.ravel(), weights=mag.ravel(), minlength=128)
    return hist / (np.linalg.norm(hist) + 1e-6)


def _similarity(ref: np.ndarray, ref_hog: np.ndarray, crop: np.ndarray) -> float:
    """Appearance match of a padded crop against the reference, allowing a few px of misalignment."""
    ncc = cv2.matchTemplate(crop, ref, cv2.TM_CCOEFF_NORMED)
    _, best, _, (bx, by) = cv2.minMaxLoc(ncc)
    aligned = crop[by : by + CROP, bx : bx + CROP]
    return 0.5 * max(best, 0.0) + 0.5 * float(ref_hog @ _hog(aligned))


def analyse(frames: np.ndarray, camera: np.ndarray, work_scale: float) -> FaceStats | None:
    """Face consistency of a clip, or None when the first frame shows no frontal face.

    frames: T x H x W x 3 uint8 RGB at any resolution. camera: the per-pair similarity
    (scale-1, rotation, tx, ty) from motion.analyse, measured at work_scale x this resolution
    and mapping frame t+1's centred coordinates into frame t's.
    """
    t, height, width = frames.shape[:3]
    det_scale = min(1.0, DETECT_SIDE / max(height, width))
    first = cv2.cvtColor(frames[0], cv2.COLOR_RGB2GRAY)
    small = cv2.resize(first, None, fx=det_scale, fy=det_scale, interpolation=cv2.INTER_AREA)
    found = _detect(small)
    if found is None:
        return None
    box = found / det_scale

    # Follow the face with the camera model: invert each pair's similarity to carry the box from
    # frame t into frame t+1. Subject motion on top of the camera is absorbed by the crop search.
    cx0, cy0 = (width - 1) / 2, (height - 1) / 2
    boxes = np.zeros((t, 4))
    boxes[0] = box
    for i in range(t - 1):
        ds, rot, tx, ty = camera[i]
        a = np.array([[1 + ds, -rot], [rot, 1 + ds]])
        centre = boxes[i, :2] + boxes[i, 2:] / 2 - (cx0, cy0)
        new_centre = np.linalg.solve(a, centre - np.array([tx, ty]) / work_scale)
        size = boxes[i, 2:] / float(np.hypot(1 + ds, rot))
        boxes[i + 1, :2] = new_centre + (cx0, cy0) - size / 2
        boxes[i + 1, 2:] = size

    ref = _crop(frames[0], box, pad=0.0)
    ref_hog = _hog(ref)
    sims = np.ones(t)
    for i in range(1, t):
        sims[i] = _similarity(ref, ref_hog, _crop(frames[i], boxes[i], pad=SEARCH / CROP))
    appearance = np.clip((sims - OTHER) / (SAME - OTHER), 0.0, 1.0)

    # Geometry: at a few checkpoints the detector should still find a face where the track says,
    # of about the same size. A vanished or jumped box costs up to the geometry share.
    geometry = []
    for i in np.linspace(0, t - 1, CHECKPOINTS + 1)[1:].round().astype(int):
        x, y, w, h = boxes[i]
        x0, y0 = max(int(x - w / 2), 0), max(int(y - h / 2), 0)
        x1, y1 = min(int(x + 1.5 * w), width), min(int(y + 1.5 * h), height)
        roi = cv2.cvtColor(frames[i, y0:y1, x0:x1], cv2.COLOR_RGB2GRAY)
        # Look for a face of about the tracked size, brought to ~48 px: a couple of ms.
        roi_scale = min(1.0, 48 / max(w, 1.0))
        roi = cv2.resize(roi, None, fx=roi_scale, fy=roi_scale, interpolation=cv2.INTER_AREA)
        size = w * roi_scale
        small_enough = min(roi.shape) >= size / 1.5 >= MIN_FACE / 2
        hit = _detect(roi, int(size / 1.5), int(size * 1.5) + 1) if small_enough else None
        if hit is None:
            geometry.append(0.0)
            continue
        hx, hy, hw, hh = hit / roi_scale + (x0, y0, 0, 0)
        inter_w = max(0.0, min(hx + hw, x + w) - max(hx, x))
        inter_h = max(0.0, min(hy + hh, y + h) - max(hy, y))
        inter = inter_w * inter_h
        geometry.append(inter / (hw * hh + w * h - inter))
    # Haar boxes wobble by ~20% IoU on the same face; only a real disagreement should cost.
    geo = float(np.clip(np.mean(geometry) / 0.7, 0.0, 1.0)) if geometry else 1.0

    worst = int(np.argmin(appearance))
    consistency = APPEARANCE_WEIGHT * float(appearance[worst]) + (1 - APPEARANCE_WEIGHT) * geo
    return FaceStats(consistency=consistency, worst_frame=worst, similarity=sims)
