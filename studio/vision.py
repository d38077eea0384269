"""Learned people and face models on the CPU: selfie matte, face boxes, face landmarks.

MediaPipe's selfie segmentation, BlazeFace face detectors (short and full range) and 468-point
face mesh ship as TFLite files in assets/models/mediapipe and run through LiteRT
(ai-edge-litert), without mediapipe itself. Pre- and post-processing follow MediaPipe's own
graphs for these models (named beside their constants), so the outputs match MediaPipe's.

Coordinates are continuous pixels: (0, 0) is the top-left corner of the top-left pixel and
(W, H) the bottom-right corner of the photo, so pixel (i, j) has its centre at (i + .5, j + .5).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from studio.blazeface import (
    FULL_RANGE,
    NMS_MIN_IOU,
    SHORT_RANGE,
    DetectorSpec,
    box_iou,
    square_crop,
    ssd_anchors,
    weighted_nms,
)
from studio.errors import ModelUnavailable
from studio.models.helpers import HelperModel

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


DETECTOR_SCORE_CLIP = 100.0
# Below this share of the photo's long side a short-range box is unreliable (the face is
# about 15 input pixels); the full-range detector's box is used instead.
SHORT_RANGE_MIN_FACE = 0.12
# Detections scoring below this are checked with the face mesh model's presence score: the
# short-range detector gives loose boxes around faces too small for it at about 0.55.
CONFIRM_BELOW = 0.75

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
                same = [face for face in found if box_iou(face.box, far.box) > NMS_MIN_IOU]
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
        crop, to_photo = square_crop(rgb, centre, side, angle, MESH_SIZE)
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


def vision_helper() -> HelperModel:
    """The bundled models as a helper model: the model manager loads them once from
    MODELS_DIR (verified, all interpreters built) and counts them in its budget."""
    return HelperModel(
        name="MediaPipe people and face models",
        folder=MODELS_DIR,
        files=tuple(MODEL_SHA256),
        build=load_vision_models,
        packages=("ai_edge_litert",),
        device="cpu",
    )


def load_vision_models(folder: Path) -> VisionModels:
    """VisionModels for a folder of the bundled files, each verified and loaded now."""
    models = VisionModels(folder)
    with _quiet_stderr():  # LiteRT's C++ "INFO: Created TensorFlow Lite..." line
        models.preload()
    return models


@contextlib.contextmanager
def _quiet_stderr():
    """Silence file descriptor 2 (native code's own prints) for a moment, then restore it."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
