"""Learned people and face models on the CPU: selfie matte, face boxes, face landmarks.

MediaPipe's selfie segmentation, BlazeFace face detectors (short and full range) and 468-point
face mesh ship as TFLite files in assets/models/mediapipe and run through LiteRT
(ai-edge-litert), without mediapipe itself. Pre- and post-processing follow MediaPipe's own
graphs for these models (named beside their constants), so the outputs match MediaPipe's.

Coordinates are continuous pixels: (0, 0) is the top-left corner of the top-left pixel and
(W, H) the bottom-right corner of the photo, so pixel (i, j) has its centre at (i + .5, j + .5).
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from studio.errors import ModelUnavailable

log = logging.getLogger(__name__)

MODELS_DIR = Path(__file__).resolve().parent.parent / "assets" / "models" / "mediapipe"

# The files as they ship in the mediapipe==0.10.21 wheel (see assets/models/mediapipe/README.md).
MODEL_SHA256 = {
    "selfie_segmentation.tflite": (
        "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c"
    ),
    "selfie_segmentation_landscape.tflite": (
        "a77d03f4659b9f6b6c1f5106947bf40e99d7655094b6527f214ea7d451106edd"
    ),
    "face_detection_short_range.tflite": (
        "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8"
    ),
    "face_detection_full_range_sparse.tflite": (
        "2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1"
    ),
    "face_landmark.tflite": "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814",
}

# The landscape selfie model (256x144) is for wide frames; the general one (256x256) for the
# rest. Above this width/height ratio the wide input distorts the photo less.
LANDSCAPE_ASPECT = 1.33


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
DETECTOR_SCORE_CLIP = 100.0
# Below this share of the photo's long side a short-range box is unreliable (the face is
# about 15 input pixels); the full-range detector's box is used instead.
SHORT_RANGE_MIN_FACE = 0.12
# Detections scoring below this are checked with the face mesh model's presence score: the
# short-range detector gives loose boxes around faces too small for it at about 0.55.
CONFIRM_BELOW = 0.75
NMS_MIN_IOU = 0.3  # face_detection.pbtxt, algorithm WEIGHTED, overlap IoU

# The six keypoints BlazeFace returns, in its order; "right" is the person's right.
KEYPOINT_NAMES = ("right_eye", "left_eye", "nose_tip", "mouth", "right_ear", "left_ear")

# Face mesh: face_detection_front_detection_to_roi.pbtxt and face_landmark_cpu.pbtxt.
MESH_SIZE = 192
MESH_NUM_POINTS = 468
MESH_ROI_SCALE = 1.5
MIN_FACE_PRESENCE = 0.5

# Mesh indices of a few features (MediaPipe's canonical face mesh topology).
MESH_RIGHT_EYE = (33, 133, 159, 145)  # outer corner, inner corner, upper lid, lower lid
MESH_LEFT_EYE = (263, 362, 386, 374)
MESH_MOUTH = (61, 291, 13, 14)  # corners, inner upper lip, inner lower lip
MESH_NOSE_TIP = 1


@dataclass(frozen=True)
class Face:
    """One face BlazeFace found: box (x0, y0, x1, y1) and six keypoints in pixels."""

    box: tuple[float, float, float, float]
    score: float
    keypoints: tuple[tuple[float, float], ...]  # in KEYPOINT_NAMES order

    def keypoint(self, name: str) -> tuple[float, float]:
        return self.keypoints[KEYPOINT_NAMES.index(name)]


@dataclass(frozen=True)
class FaceMesh:
    """468 face-mesh points (x, y, z) in pixels; z is depth relative to the face's centre
    (smaller is nearer the camera) on the same scale as x. presence is the model's own
    confidence that the crop holds a face, in [0, 1]."""

    points: np.ndarray
    presence: float


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


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    inter_w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    inter_h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = inter_w * inter_h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _square_crop(
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


class VisionModels:
    """The three MediaPipe models, each loaded once and checked against MODEL_SHA256.

    Safe to share between threads: the verified model bytes are shared, and each thread gets
    its own interpreters (a TFLite interpreter must not run two inferences at once), built on
    its first call (about 30 ms for all five) and freed with the thread.
    """

    def __init__(self, models_dir: Path | str = MODELS_DIR, num_threads: int = 1) -> None:
        self.models_dir = Path(models_dir)
        self.num_threads = num_threads
        self._lock = threading.Lock()
        self._model_bytes: dict[str, bytes] = {}
        self._local = threading.local()
        self._anchor_table = {spec.file: ssd_anchors(spec) for spec in (SHORT_RANGE, FULL_RANGE)}

    # -- loading ---------------------------------------------------------------------------

    def _bytes(self, name: str) -> bytes:
        with self._lock:
            if name not in self._model_bytes:
                path = self.models_dir / name
                try:
                    data = path.read_bytes()
                except OSError as exc:
                    log.error("vision model %s cannot be read: %s", path, exc)
                    raise ModelUnavailable(
                        "The built-in people and face models are missing; reinstall Motion "
                        "Studio to restore them."
                    ) from exc
                digest = hashlib.sha256(data).hexdigest()
                if digest != MODEL_SHA256[name]:
                    log.error(
                        "vision model %s has sha256 %s, expected %s",
                        path,
                        digest,
                        MODEL_SHA256[name],
                    )
                    raise ModelUnavailable(
                        "The built-in people and face models are damaged (a model file does not "
                        "match its checksum); reinstall Motion Studio to restore them."
                    )
                self._model_bytes[name] = data
            return self._model_bytes[name]

    def _interpreter(self, name: str):
        cache = self._local.__dict__.setdefault("interpreters", {})
        if name not in cache:
            data = self._bytes(name)
            try:
                from ai_edge_litert.interpreter import Interpreter
            except ImportError as exc:
                raise ModelUnavailable(
                    "The people and face models need the LiteRT runtime (ai-edge-litert), which "
                    "is not installed; reinstall the studio's requirements."
                ) from exc
            interpreter = Interpreter(model_content=data, num_threads=self.num_threads)
            interpreter.allocate_tensors()
            cache[name] = interpreter
        return cache[name]

    def _run(self, name: str, tensor: np.ndarray) -> list[np.ndarray]:
        interpreter = self._interpreter(name)
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], tensor[None])
        interpreter.invoke()
        return [interpreter.get_tensor(d["index"])[0] for d in interpreter.get_output_details()]

    def preload(self) -> None:
        """Verify and load every model now (in this thread) instead of on first use."""
        for name in MODEL_SHA256:
            self._interpreter(name)

    # -- people ----------------------------------------------------------------------------

    def person_matte(self, rgb: np.ndarray) -> np.ndarray:
        """How much each pixel belongs to a person: float32 HxW in [0, 1] at the photo's size.

        The photo is resized (not letterboxed, as MediaPipe does) to the model's input; the
        low-resolution mask is scaled back with a bicubic filter. The model assumes a person is
        in view: on a photo without one it marks whatever stands out (a cup on a table), so
        callers decide first whether the photo shows a person (faces(), for instance).
        """
        h, w = rgb.shape[:2]
        name = (
            "selfie_segmentation_landscape.tflite"
            if w / h > LANDSCAPE_ASPECT
            else "selfie_segmentation.tflite"
        )
        in_h, in_w = self._interpreter(name).get_input_details()[0]["shape"][1:3]
        small = cv2.resize(rgb, (int(in_w), int(in_h)), interpolation=cv2.INTER_AREA)
        (mask,) = self._run(name, small.astype(np.float32) / 255.0)
        matte = cv2.resize(mask[..., 0], (w, h), interpolation=cv2.INTER_CUBIC)
        return np.clip(matte, 0.0, 1.0).astype(np.float32)

    # -- faces -----------------------------------------------------------------------------

    def faces(self, rgb: np.ndarray, min_score: float | None = None) -> list[Face]:
        """Faces in the photo, best first; boxes and keypoints in pixels (they may reach past
        the photo's edge).

        The short-range detector runs first and is kept for faces large enough for it. Unless
        it found such a face with confidence, the full-range detector (about three times
        slower) looks for smaller, more distant faces too; where both found the same face, the
        surer one is kept. A face the detectors are unsure of is kept only if the face mesh
        model, given its crop, agrees that it shows a face. For one detector alone, detect().
        """
        long_side = max(rgb.shape[:2])
        found = [
            face
            for face in self.detect(rgb, SHORT_RANGE, min_score)
            if max(face.box[2] - face.box[0], face.box[3] - face.box[1])
            >= SHORT_RANGE_MIN_FACE * long_side
        ]
        if not any(face.score >= CONFIRM_BELOW for face in found):
            for far in self.detect(rgb, FULL_RANGE, min_score):
                same = [face for face in found if _iou(face.box, far.box) > NMS_MIN_IOU]
                if all(face.score < far.score for face in same):
                    found = [face for face in found if face not in same] + [far]
        found = [
            face
            for face in found
            if face.score >= CONFIRM_BELOW or self.mesh(rgb, face).presence >= MIN_FACE_PRESENCE
        ]
        return sorted(found, key=lambda face: -face.score)

    def detect(
        self, rgb: np.ndarray, spec: DetectorSpec, min_score: float | None = None
    ) -> list[Face]:
        """Faces one BlazeFace variant finds with at least min_score (default: its graph's)."""
        min_score = spec.min_score if min_score is None else min_score
        size = spec.size

        # 1. Letterbox the photo into the square input, black bars, values in [-1, 1].
        h, w = rgb.shape[:2]
        scale = size / max(h, w)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        ox, oy = (size - nw) // 2, (size - nh) // 2
        tensor = np.full((size, size, 3), -1.0, dtype=np.float32)
        small = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA)
        tensor[oy : oy + nh, ox : ox + nw] = small.astype(np.float32) / 127.5 - 1.0

        # 2. Run; outputs are 16 regressors and one logit per anchor.
        outputs = self._run(spec.file, tensor)
        regressors, logits = sorted(outputs, key=lambda t: -t.shape[-1])
        clip = DETECTOR_SCORE_CLIP
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits[:, 0].astype(np.float64), -clip, clip)))
        keep = scores >= min_score
        if not keep.any():
            return []

        # 3. Decode boxes (centre, size) and keypoints relative to their anchors.
        raw = regressors[keep] / size
        anchors = self._anchor_table[spec.file][keep]
        cx, cy = raw[:, 0] + anchors[:, 0], raw[:, 1] + anchors[:, 1]
        bw, bh = raw[:, 2], raw[:, 3]
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
        kps = raw[:, 4:16].reshape(-1, 6, 2) + anchors[:, None, :]

        # 4. Merge overlapping detections, then map from the input square to photo pixels.
        def to_photo(xy: np.ndarray) -> np.ndarray:
            x = (xy[..., 0] * size - ox) * (w / nw)
            y = (xy[..., 1] * size - oy) * (h / nh)
            return np.stack([x, y], axis=-1)

        found = []
        for box, score, points in weighted_nms(boxes, scores[keep], kps):
            corners = to_photo(box.reshape(2, 2)).reshape(4)
            found.append(
                Face(
                    box=tuple(float(v) for v in corners),
                    score=score,
                    keypoints=tuple((float(x), float(y)) for x, y in to_photo(points)),
                )
            )
        return found

    def mesh(self, rgb: np.ndarray, face: Face) -> FaceMesh:
        """The 468-point face mesh of one detected face, in photo pixels."""
        # 1. The region MediaPipe gives the mesh model: the detection box, turned so the eyes
        #    are level, made square on its longer side and enlarged 1.5x.
        x0, y0, x1, y1 = face.box
        (rx, ry), (lx, ly) = face.keypoint("right_eye"), face.keypoint("left_eye")
        angle = math.atan2(ly - ry, lx - rx)
        side = max(x1 - x0, y1 - y0) * MESH_ROI_SCALE
        centre = ((x0 + x1) / 2, (y0 + y1) / 2)

        # 2. Crop upright at 192x192, values in [0, 1], and run.
        crop, to_photo = _square_crop(rgb, centre, side, angle, MESH_SIZE)
        points, flag = self._run("face_landmark.tflite", crop.astype(np.float32) / 255.0)
        logit = float(np.clip(flag.reshape(-1)[0], -DETECTOR_SCORE_CLIP, DETECTOR_SCORE_CLIP))
        presence = 1.0 / (1.0 + math.exp(-logit))

        # 3. Map the crop's points back: x, y through the crop's matrix; z on the x scale.
        pts = points.reshape(MESH_NUM_POINTS, 3).astype(np.float64)
        xy = pts[:, :2] @ to_photo[:, :2].T + to_photo[:, 2]
        z = pts[:, 2] * side / MESH_SIZE
        return FaceMesh(points=np.column_stack([xy, z]).astype(np.float32), presence=presence)

    def landmarks(self, rgb: np.ndarray, face: Face) -> np.ndarray:
        """The face's 468 mesh points (x, y, z) in pixels, float32 (468, 3)."""
        return self.mesh(rgb, face).points
