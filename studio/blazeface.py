"""BlazeFace's arithmetic, as MediaPipe's graphs define it: detector variants, anchors, weighted
non-max suppression, and the rotated square crops the face mesh reads (no model runtime here)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class DetectorSpec:
    """One BlazeFace variant, as its MediaPipe graph configures it."""

    file: str
    size: int  # square input, pixels
    strides: tuple[int, ...]  # SsdAnchorsCalculator layers
    anchors_per_cell: int  # 1, or 2 with interpolated_scale_aspect_ratio 1.0 (fixed size)
    num_anchors: int
    min_score: float


# face_detection_short_range.pbtxt: faces within about 2 m, filling a fair part of the frame.
SHORT_RANGE = DetectorSpec(
    file="face_detection_short_range.tflite",
    size=128,
    strides=(8, 16, 16, 16),
    anchors_per_cell=2,
    num_anchors=896,
    min_score=0.5,
)
# face_detection_full_range.pbtxt: faces within about 5 m, down to a few percent of the frame.
FULL_RANGE = DetectorSpec(
    file="face_detection_full_range_sparse.tflite",
    size=192,
    strides=(4,),
    anchors_per_cell=1,
    num_anchors=2304,
    min_score=0.6,
)
NMS_MIN_IOU = 0.3  # face_detection.pbtxt, algorithm WEIGHTED, overlap IoU


def ssd_anchors(spec: DetectorSpec) -> np.ndarray:
    """Anchor centres (N, 2) of a BlazeFace variant, normalised to its square input.

    SsdAnchorsCalculator with fixed_anchor_size: every anchor is 1x1, so only the centres
    matter; consecutive layers with the same stride share one feature map.
    """
    centres = []
    layer = 0
    while layer < len(spec.strides):
        stride = spec.strides[layer]
        same = 1
        while layer + same < len(spec.strides) and spec.strides[layer + same] == stride:
            same += 1
        cells = math.ceil(spec.size / stride)
        ys, xs = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        grid = np.stack([(xs + 0.5) / cells, (ys + 0.5) / cells], axis=-1).reshape(-1, 1, 2)
        per_cell = same * spec.anchors_per_cell
        centres.append(np.repeat(grid, per_cell, axis=1).reshape(-1, 2))
        layer += same
    anchors = np.concatenate(centres).astype(np.float32)
    assert len(anchors) == spec.num_anchors, (spec.file, len(anchors))
    return anchors


def weighted_nms(
    boxes: np.ndarray, scores: np.ndarray, keypoints: np.ndarray, min_iou: float = NMS_MIN_IOU
) -> list[tuple[np.ndarray, float, np.ndarray]]:
    """MediaPipe's WEIGHTED non-max suppression: each kept detection is the score-weighted
    mean of every remaining detection that overlaps the best one by more than min_iou
    (itself included), and keeps the best one's score. boxes are (N, 4) x0, y0, x1, y1."""
    order = list(np.argsort(-scores, kind="stable"))
    kept = []
    while order:
        top = order[0]
        rest = np.array(order)
        inter_w = np.clip(
            np.minimum(boxes[rest, 2], boxes[top, 2]) - np.maximum(boxes[rest, 0], boxes[top, 0]),
            0,
            None,
        )
        inter_h = np.clip(
            np.minimum(boxes[rest, 3], boxes[top, 3]) - np.maximum(boxes[rest, 1], boxes[top, 1]),
            0,
            None,
        )
        inter = inter_w * inter_h
        areas = (boxes[rest, 2] - boxes[rest, 0]) * (boxes[rest, 3] - boxes[rest, 1])
        union = areas + areas[0] - inter
        iou = np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
        merged = rest[iou > min_iou]
        if top not in merged:  # a degenerate (zero-area) box still counts as itself
            merged = np.append(merged, top)
        weights = scores[merged][:, None]
        total = float(weights.sum())
        box = (boxes[merged] * weights).sum(axis=0) / total
        kps = (keypoints[merged] * weights[:, :, None]).sum(axis=0) / total
        kept.append((box, float(scores[top]), kps))
        order = [int(i) for i in rest[iou <= min_iou] if i != top]
    return kept


def box_iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    inter_w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    inter_h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = inter_w * inter_h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def square_crop(
    rgb: np.ndarray, centre: tuple[float, float], side: float, angle: float, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """A size x size crop of the square of the given side centred on centre, rotated by angle
    (radians, clockwise on screen) so that the crop's x axis follows that direction. Returns
    the crop and the 2x3 matrix from crop coordinates (0..size) to photo coordinates."""
    cos, sin = math.cos(angle), math.sin(angle)
    k = side / size
    # Crop point (u, v) -> photo point centre + k * R @ (u - size/2, v - size/2).
    to_photo = np.array(
        [
            [k * cos, -k * sin, centre[0] - k * size / 2 * (cos - sin)],
            [k * sin, k * cos, centre[1] - k * size / 2 * (sin + cos)],
        ],
        dtype=np.float64,
    )
    src = rgb
    offset = np.zeros(2)
    shrink = 1.0
    if k > 1.5:
        # Downsample the region first with an area filter: a plain warp of a face much larger
        # than the crop would alias (hair and skin texture turn to noise).
        half = side * (abs(cos) + abs(sin)) / 2 + 2
        h, w = rgb.shape[:2]
        x0, y0 = max(0, int(centre[0] - half)), max(0, int(centre[1] - half))
        x1, y1 = min(w, int(math.ceil(centre[0] + half))), min(h, int(math.ceil(centre[1] + half)))
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            region = rgb[y0:y1, x0:x1]
            shrink = 1.0 / k
            nw = max(1, round((x1 - x0) * shrink))
            nh = max(1, round((y1 - y0) * shrink))
            src = cv2.resize(region, (nw, nh), interpolation=cv2.INTER_AREA)
            offset = np.array([x0, y0], dtype=np.float64)
            shrink_x, shrink_y = nw / (x1 - x0), nh / (y1 - y0)
        else:
            shrink_x = shrink_y = 1.0
    else:
        shrink_x = shrink_y = 1.0
    # Matrix in src pixel-index coordinates for warpAffine: crop index (j) is crop coordinate
    # j + .5; photo coordinate p is src index (p - offset) * shrink - .5.
    to_src = to_photo.copy()
    to_src[:, 2] -= offset
    to_src[0] *= shrink_x
    to_src[1] *= shrink_y
    to_src[:, 2] += to_src[:, :2] @ np.array([0.5, 0.5]) - 0.5
    crop = cv2.warpAffine(
        src,
        to_src,
        (size, size),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return crop, to_photo
