"""The bundled MediaPipe models on real photos: person matte, faces, face landmarks."""

from __future__ import annotations

import hashlib
import math
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from studio.blazeface import SHORT_RANGE, ssd_anchors, weighted_nms
from studio.errors import ModelUnavailable
from studio.vision import (
    FULL_RANGE,
    MESH_LEFT_EYE,
    MESH_MOUTH,
    MESH_RIGHT_EYE,
    MODEL_SHA256,
    MODELS_DIR,
    VisionModels,
)

# A rough hand-drawn outline of the astronaut (512x512): head and hair, then the suit, the
# collar ring and the helmet she holds, down to the bottom edge.
ASTRONAUT_HEAD = ((225, 95), (72, 85))  # ellipse centre, half-axes
ASTRONAUT_BODY = [
    (120, 160),
    (330, 160),
    (360, 300),
    (500, 360),
    (512, 512),
    (20, 512),
    (25, 300),
    (110, 230),
]


def _rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture(scope="module")
def models() -> VisionModels:
    return VisionModels()


@pytest.fixture(scope="module")
def astronaut(samples) -> np.ndarray:
    return _rgb(samples["portrait"])


def _rotate_point(x: float, y: float, degrees: float, size: tuple[int, int]) -> tuple[float, float]:
    """Where PIL's Image.rotate(degrees) (counter-clockwise, about the centre) moves (x, y)."""
    cx, cy = size[0] / 2, size[1] / 2
    a = math.radians(degrees)
    dx, dy = x - cx, y - cy
    return cx + dx * math.cos(a) + dy * math.sin(a), cy - dx * math.sin(a) + dy * math.cos(a)


def test_models_ship_with_the_project_with_licence_and_checksums():
    readme = (MODELS_DIR / "README.md").read_text()
    total = 0
    for name, digest in MODEL_SHA256.items():
        data = (MODELS_DIR / name).read_bytes()
        total += len(data)
        assert hashlib.sha256(data).hexdigest() == digest, name
        assert name in readme and digest in readme
    assert total < 3_000_000
    licence = (MODELS_DIR / "LICENSE").read_text()
    assert "Apache License" in licence and "Version 2.0, January 2004" in licence
    assert "mediapipe==0.10.21" in readme


def test_person_matte_covers_the_astronaut_and_not_the_background(models, astronaut):
    matte = models.person_matte(astronaut)
    assert matte.shape == astronaut.shape[:2] and matte.dtype == np.float32
    assert matte.min() >= 0.0 and matte.max() <= 1.0

    def mean(x0, y0, x1, y1):
        return float(matte[y0:y1, x0:x1].mean())

    assert mean(195, 95, 255, 165) > 0.95  # face
    assert mean(175, 30, 275, 60) > 0.9  # hair on top of the head
    assert mean(140, 200, 300, 260) > 0.9  # collar ring
    assert mean(60, 300, 250, 480) > 0.95  # suit
    assert mean(0, 0, 60, 120) < 0.05  # flag, top left
    assert mean(330, 0, 512, 60) < 0.05  # backdrop, top right
    assert mean(380, 60, 450, 250) < 0.05  # the model shuttle

    hand = np.zeros(matte.shape, np.uint8)
    cv2.ellipse(hand, ASTRONAUT_HEAD[0], ASTRONAUT_HEAD[1], 0, 0, 360, 1, -1)
    cv2.fillPoly(hand, [np.array(ASTRONAUT_BODY, np.int32)], 1)
    person = matte > 0.5
    iou = (person & (hand > 0)).sum() / (person | (hand > 0)).sum()
    assert iou > 0.85


def test_wide_photo_is_matted_by_the_landscape_model(models, astronaut):
    wide = cv2.copyMakeBorder(astronaut, 0, 0, 200, 200, cv2.BORDER_CONSTANT, value=(128,) * 3)
    matte = models.person_matte(wide)
    assert matte.shape == wide.shape[:2]
    assert matte[95:165, 395:455].mean() > 0.9  # the face, moved right by the border
    assert matte[:, :150].mean() < 0.05 and matte[:, -150:].mean() < 0.05


def test_one_face_in_the_portrait_with_plausible_box_and_keypoints(models, astronaut):
    faces = models.faces(astronaut)
    assert len(faces) == 1
    face = faces[0]
    x0, y0, x1, y1 = face.box
    assert face.score > 0.8
    # Her face spans roughly x 180..270, y 75..180 in this 512x512 photo.
    assert 165 < x0 < 195 and 255 < x1 < 285 and 65 < y0 < 100 and 160 < y1 < 195
    right_eye, left_eye = face.keypoint("right_eye"), face.keypoint("left_eye")
    nose, mouth = face.keypoint("nose_tip"), face.keypoint("mouth")
    assert right_eye[0] < left_eye[0]  # the person's right eye is on the picture's left
    assert max(right_eye[1], left_eye[1]) < nose[1] < mouth[1]
    assert all(x0 - 5 <= x <= x1 + 5 and y0 - 5 <= y <= y1 + 5 for x, y in face.keypoints)


def test_faces_and_landmarks_are_in_photo_pixels_on_wide_and_tall_photos(models, astronaut):
    square = models.faces(astronaut)[0]
    square_points = models.landmarks(astronaut, square)
    grey = (128, 128, 128)
    for top, left in ((0, 200), (150, 0)):
        padded = cv2.copyMakeBorder(
            astronaut, top, top, left, left, cv2.BORDER_CONSTANT, value=grey
        )
        faces = models.faces(padded)
        assert len(faces) == 1
        x0, y0, x1, y1 = faces[0].box
        centre = np.array([(x0 + x1) / 2 - left, (y0 + y1) / 2 - top])
        expected = np.array(square.box).reshape(2, 2).mean(axis=0)
        assert np.hypot(*(centre - expected)) < 0.1 * (square.box[2] - square.box[0])
        points = models.landmarks(padded, faces[0])[:, :2] - [left, top]
        assert np.median(np.linalg.norm(points - square_points[:, :2], axis=1)) < 2.0


def test_no_face_in_the_product_or_the_scene(models, samples):
    assert models.faces(_rgb(samples["product"])) == []
    assert models.faces(_rgb(samples["scenic"])) == []


def test_landmarks_fall_in_the_face_with_eyes_above_the_mouth(models, astronaut):
    face = models.faces(astronaut)[0]
    mesh = models.mesh(astronaut, face)
    points = models.landmarks(astronaut, face)
    assert points.shape == (468, 3) and points.dtype == np.float32
    assert mesh.presence > 0.9
    x0, y0, x1, y1 = face.box
    mx, my = 0.15 * (x1 - x0), 0.15 * (y1 - y0)
    inside = (
        (points[:, 0] >= x0 - mx)
        & (points[:, 0] <= x1 + mx)
        & (points[:, 1] >= y0 - my)
        & (points[:, 1] <= y1 + my)
    )
    assert inside.all()
    right_eye, left_eye = points[list(MESH_RIGHT_EYE)], points[list(MESH_LEFT_EYE)]
    mouth = points[list(MESH_MOUTH)]
    assert max(right_eye[:, 1].max(), left_eye[:, 1].max()) < mouth[:, 1].min()
    assert right_eye[:, 0].mean() < left_eye[:, 0].mean()
    # The mesh's eyes agree with the detector's eye keypoints to a few pixels.
    for mesh_eye, name in ((right_eye, "right_eye"), (left_eye, "left_eye")):
        centre = mesh_eye[:, :2].mean(axis=0)
        assert np.hypot(*(centre - np.array(face.keypoint(name)))) < 8


def test_portrait_rotated_20_degrees_still_finds_the_face_and_its_mesh(models, astronaut):
    upright_face = models.faces(astronaut)[0]
    upright = models.landmarks(astronaut, upright_face)
    size = (astronaut.shape[1], astronaut.shape[0])
    rotated = np.asarray(Image.fromarray(astronaut).rotate(20, resample=Image.BICUBIC))

    faces = models.faces(rotated)
    assert len(faces) == 1
    x0, y0, x1, y1 = upright_face.box
    expected = _rotate_point((x0 + x1) / 2, (y0 + y1) / 2, 20, size)
    box = faces[0].box
    assert math.dist(expected, ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)) < 12

    # The mesh of the turned face is the upright mesh turned with it, to a few pixels.
    points = models.landmarks(rotated, faces[0])
    moved = np.array([_rotate_point(x, y, 20, size) for x, y in upright[:, :2]])
    error = np.linalg.norm(points[:, :2] - moved, axis=1)
    # (Cropping without turning the face upright misses by 1.3 and 2.6 px here.)
    assert np.median(error) < 1.0 and np.percentile(error, 95) < 2.0


@pytest.mark.parametrize("scale", [0.3, 0.45])
def test_small_distant_face_is_found_once_where_it_is(models, astronaut, scale):
    # Too small for the short-range detector, which at 0.3 also puts a loose phantom box
    # next to it; the full-range detector finds it and the phantom is dropped.
    canvas = np.full((512, 512, 3), 128, np.uint8)
    small = cv2.resize(astronaut, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    left = (512 - small.shape[1]) // 2
    canvas[: small.shape[0], left : left + small.shape[1]] = small
    faces = models.faces(canvas)
    assert len(faces) == 1
    x0, y0, x1, y1 = models.faces(astronaut)[0].box
    expected = (left + scale * (x0 + x1) / 2, scale * (y0 + y1) / 2)
    box = faces[0].box
    assert math.dist(expected, ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)) < 0.2 * scale * (
        x1 - x0
    )
    assert 0.7 < (box[2] - box[0]) / (scale * (x1 - x0)) < 1.4
    assert models.mesh(canvas, faces[0]).presence > 0.9


def test_damaged_or_missing_model_file_is_a_clear_error(tmp_path, astronaut):
    damaged = tmp_path / "models"
    shutil.copytree(MODELS_DIR, damaged)
    data = bytearray((damaged / "face_detection_short_range.tflite").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (damaged / "face_detection_short_range.tflite").write_bytes(bytes(data))
    with pytest.raises(ModelUnavailable, match="damaged") as caught:
        VisionModels(damaged).faces(astronaut)
    assert str(tmp_path) not in str(caught.value)
    assert str(caught.value).endswith(".") and "\n" not in str(caught.value)

    shutil.copy(MODELS_DIR / "face_detection_short_range.tflite", damaged)
    (damaged / "face_landmark.tflite").unlink()
    partial = VisionModels(damaged)
    assert len(partial.faces(astronaut)) == 1  # the intact models still work
    with pytest.raises(ModelUnavailable, match="missing"):
        partial.landmarks(astronaut, partial.faces(astronaut)[0])


def test_models_load_and_run_with_no_network(monkeypatch, astronaut):
    def refuse(*args, **kwargs):
        raise OSError("network is off in this test")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    offline = VisionModels()
    offline.preload()
    assert len(offline.faces(astronaut)) == 1


def test_one_instance_serves_many_threads_with_identical_results(models, astronaut):
    face = models.faces(astronaut)[0]
    expected = (models.person_matte(astronaut), models.landmarks(astronaut, face))
    results, errors = [], []

    def work():
        try:
            for _ in range(3):
                found = models.faces(astronaut)[0]
                results.append((models.person_matte(astronaut), models.landmarks(astronaut, found)))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 12
    for matte, points in results:
        np.testing.assert_array_equal(matte, expected[0])
        np.testing.assert_array_equal(points, expected[1])


def test_anchors_follow_mediapipe_layout():
    short = ssd_anchors(SHORT_RANGE)
    assert short.shape == (896, 2)
    # Stride 8: a 16x16 grid, two anchors per cell, row by row.
    np.testing.assert_allclose(short[0], short[1])
    np.testing.assert_allclose(short[0], [0.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(short[2], [1.5 / 16, 0.5 / 16])
    # Three stride-16 layers share one 8x8 grid: six anchors per cell.
    np.testing.assert_allclose(short[512:518], [[0.5 / 8, 0.5 / 8]] * 6)
    np.testing.assert_allclose(short[-1], [7.5 / 8, 7.5 / 8])
    full = ssd_anchors(FULL_RANGE)
    assert full.shape == (2304, 2)
    np.testing.assert_allclose(full[48], [0.5 / 48, 1.5 / 48])


def test_weighted_nms_blends_overlapping_detections_by_score():
    boxes = np.array([[0.0, 0.0, 1.0, 1.0], [0.1, 0.0, 1.1, 1.0], [3.0, 3.0, 4.0, 4.0]])
    scores = np.array([0.9, 0.6, 0.7])
    keypoints = np.zeros((3, 6, 2))
    keypoints[1] += 1.0
    kept = weighted_nms(boxes, scores, keypoints)
    assert len(kept) == 2
    (box, score, kps), (far_box, far_score, _) = kept
    assert score == pytest.approx(0.9) and far_score == pytest.approx(0.7)
    np.testing.assert_allclose(box, [0.04, 0.0, 1.04, 1.0])  # 0.6 * 0.1 / 1.5
    np.testing.assert_allclose(kps, np.full((6, 2), 0.4))
    np.testing.assert_allclose(far_box, boxes[2])


# -- the models as a helper of the model manager ------------------------------------------------


@pytest.fixture
def manager(tmp_path, monkeypatch):
    """A fresh process-wide model manager, and no memory of earlier failed loads."""
    from studio.models import ModelManager, set_manager
    from studio.motion import matte
    from studio.settings import Settings

    monkeypatch.setattr(matte, "_VISION_FAILED", set())
    fresh = ModelManager({}, settings=Settings(hub_cache=tmp_path / "hub"))
    set_manager(fresh)
    yield fresh
    set_manager(None)


def test_shared_vision_is_loaded_once_and_counted_by_the_model_manager(manager, astronaut):
    from studio.motion.matte import shared_vision

    first, second = shared_vision(), shared_vision()
    assert isinstance(first, VisionModels) and first is second
    [entry] = manager.cache.entries()
    assert entry.label == "MediaPipe people and face models"
    assert entry.nbytes == sum((MODELS_DIR / name).stat().st_size for name in MODEL_SHA256)
    assert manager.free_bytes("cpu") == manager.budget("cpu") - entry.nbytes
    assert len(first.faces(astronaut)) == 1


def _fallback_to_automatic(caplog, astronaut):
    from studio.motion.matte import shared_vision
    from studio.motion.subject import find_subject

    with caplog.at_level("WARNING", logger="studio.motion.matte"):
        assert shared_vision() is None and shared_vision() is None
        subject = find_subject(astronaut, shared_vision(), learned=None)
    assert subject.source == "automatic"
    warnings = [r for r in caplog.records if "using the automatic matte" in r.getMessage()]
    assert len(warnings) == 1  # said once, however often the engine asks


def test_a_damaged_model_file_means_the_automatic_matte_and_one_warning(
    manager, tmp_path, monkeypatch, caplog, astronaut
):
    from studio import vision

    damaged = tmp_path / "models"
    shutil.copytree(MODELS_DIR, damaged)
    data = bytearray((damaged / "selfie_segmentation.tflite").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (damaged / "selfie_segmentation.tflite").write_bytes(bytes(data))
    monkeypatch.setattr(vision, "MODELS_DIR", damaged)
    _fallback_to_automatic(caplog, astronaut)
    assert manager.cache.entries() == []


def test_without_litert_the_engine_uses_the_automatic_matte_and_warns_once(
    manager, monkeypatch, caplog, astronaut
):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "ai_edge_litert" else find_spec(name, *a))  # fmt: skip
    _fallback_to_automatic(caplog, astronaut)


def test_loading_the_people_models_through_the_manager_does_not_import_torch():
    code = (
        "import sys; from studio.motion.matte import shared_vision; "
        "assert shared_vision() is not None; "
        "print('torch' in sys.modules, 'transformers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=MODELS_DIR.parents[2], timeout=120)  # fmt: skip
    assert out.stdout.split() == ["False", "False"]
