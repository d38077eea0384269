"""The engine's subject: the whole person when there is a face, nothing scattered cut into holes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from studio.motion.matte import focus_cues, people_matte, shared_vision, subject_matte
from studio.motion.scene import build_scene
from studio.plan import VariantPlan


def _rgb(path) -> np.ndarray:
    return np.array(Image.open(path).convert("RGB"))


@pytest.fixture(scope="module")
def vision():
    models = shared_vision()
    assert models is not None, "the bundled people and face models did not load"
    return models


def test_a_portrait_subject_is_the_whole_person_helmet_and_collar_included(samples, vision):
    rgb = _rgb(samples["portrait"])  # 512x512: the astronaut with her helmet in front of her
    alpha = people_matte(rgb, vision)
    assert alpha is not None
    assert alpha[430, 400] > 0.5  # the dark helmet she holds (the automatic matte drops it)
    assert alpha[200, 150] > 0.5  # the collar ring
    assert alpha[120, 250] > 0.5  # the face
    assert alpha[60, 30] < 0.2 and alpha[100, 460] < 0.2  # the flag and the model shuttle
    assert subject_matte(rgb)[430, 400] < 0.5  # what the automatic matte alone gives


def test_without_a_face_there_is_no_people_matte(samples, vision):
    assert people_matte(_rgb(samples["product"]), vision) is None  # the selfie model alone
    assert people_matte(_rgb(samples["scenic"]), vision) is None  # would call the cup a person


def test_the_engine_uses_the_people_matte_for_a_portrait(samples):
    rgb = _rgb(samples["portrait"])
    plan = VariantPlan(index=0, seed=1, width=256, height=256, frames=4, fps=12)
    scene = build_scene(rgb, [plan])
    s = scene.scale
    assert scene.alpha[int(430 * s), int(400 * s)] > 0.5
    assert build_scene(rgb, [plan], vision=None).alpha[int(430 * s), int(400 * s)] < 0.5


def test_scattered_bright_points_are_not_cut_out_as_a_subject():
    rng = np.random.default_rng(4)
    sky = rng.integers(0, 18, (400, 600, 3), dtype=np.uint8)  # a deep-field-like photo
    for _ in range(60):
        y, x, r = rng.integers(10, 390), rng.integers(10, 590), int(rng.integers(2, 7))
        colour = rng.integers(150, 256, 3)
        yy, xx = np.ogrid[-y : 400 - y, -x : 600 - x]
        sky[yy * yy + xx * xx <= r * r] = colour
    assert float(subject_matte(sky).max()) == 0.0


def _close_up() -> tuple[np.ndarray, np.ndarray]:
    """A sharp, striped fur-like texture that fills most of the frame and runs off its top,
    left and bottom, in front of a soft, blurred pale background, and its mask."""
    rng = np.random.default_rng(2)
    h, w = 360, 540
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    grain = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 1.0)
    t = np.clip(0.5 + 0.25 * np.sin(xx / 9.0 + 2.0 * np.sin(yy / 30.0)) + 0.35 * grain, 0, 1)
    dark, light = np.array([120, 85, 50], np.float32), np.array([215, 185, 140], np.float32)
    fur = dark * (1 - t[..., None]) + light * t[..., None]
    blobs = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 12) * 40
    back = np.clip(np.array([205, 190, 195], np.float32) + blobs[..., None], 0, 255)
    back = cv2.GaussianBlur(back, (0, 0), 4)
    mask = np.zeros((h, w), np.uint8)
    cv2.ellipse(mask, (170, 200), (250, 240), 0, 0, 360, 255, -1)
    img = np.where((mask > 0)[..., None], fur, back) + rng.normal(0, 1.5, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8), mask


def test_focus_cues_tell_sharp_from_blurred_from_flat():
    img, mask = _close_up()
    img[:60, 440:] = 200  # a flat patch in the blurred background
    sharp, blurred, flat = focus_cues(img, (270, 180))
    inside = cv2.resize(mask, (270, 180)) > 0
    assert sharp[inside].mean() > 0.6 and sharp[~inside].mean() < 0.1
    assert flat[5:25, 225:265].all() and not flat[inside].any()
    assert blurred[~inside & ~flat].mean() > blurred[inside].mean()


def test_a_close_up_running_off_the_frame_is_found_by_its_focus():
    # The subject fills the band on three sides, so the band's colours are the subject's;
    # only focus says which part of the band is background.
    img, mask = _close_up()
    alpha = subject_matte(img)
    found = alpha > 0.5
    assert (found & (mask > 0)).sum() / (found | (mask > 0)).sum() > 0.95
