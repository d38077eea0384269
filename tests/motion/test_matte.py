"""The engine's subject: the whole person when there is a face, nothing scattered cut into holes."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from studio.motion.matte import people_matte, shared_vision, subject_matte
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
