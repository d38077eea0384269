"""A photo the output enlarges is analysed at its own size: the same scene, as sharp, for less."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from studio.motion.filters import resize_to
from studio.motion.matte import _scattered
from studio.motion.scene import build_scene
from studio.plan import VariantPlan


def _rgb(path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _plan(width: int = 1024, height: int = 576) -> VariantPlan:
    return VariantPlan(index=0, seed=1, width=width, height=height, frames=4, fps=12)


@pytest.fixture(scope="module", params=["portrait", "product"])
def enlarged(request, samples):
    """The sample enlarged 2x by the engine, and the same enlargement analysed directly."""
    rgb = _rgb(samples[request.param])
    h, w = rgb.shape[:2]
    # A plan twice the photo's width: the engine works at 2x, analysing the photo itself.
    plan = _plan(2 * w - (2 * w) % 2, 2 * h - (2 * h) % 2)
    ours = build_scene(rgb, [plan])
    # The same working image handed over already enlarged: analysed at that size.
    big = resize_to(rgb, ours.image.shape[1], ours.image.shape[0])
    direct = build_scene(big, [plan])
    return request.param, ours, direct


def test_an_enlarged_photo_gets_the_same_subject_as_its_enlargement(enlarged):
    name, ours, direct = enlarged
    assert ours.image.shape == direct.image.shape and ours.scale == pytest.approx(2.0, abs=0.01)
    assert ours.has_subject and direct.has_subject and ours.subject_source == direct.subject_source
    a, b = ours.alpha > 0.5, direct.alpha > 0.5
    assert (a & b).sum() / (a | b).sum() > 0.98, name
    assert np.hypot(*np.subtract(ours.subject_center, direct.subject_center)) < 2.5
    for f, g in zip(ours.faces, direct.faces, strict=True):
        assert np.abs(np.subtract(f.box, g.box)).max() < 6.0
    for m, n in zip(ours.landmarks, direct.landmarks, strict=True):
        assert np.median(np.hypot(*(m[:, :2] - n[:, :2]).T)) < 2.0
    assert np.abs(ours.depth - direct.depth).mean() < 0.01


def test_an_enlarged_subject_is_as_sharp_as_the_photo_around_it(enlarged):
    _, ours, _ = enlarged
    solid = ours.layer[..., 3] == 255
    assert solid.mean() > 0.05
    # Inside the subject the layer is the working image itself (not a softer enlargement).
    gap = np.abs(ours.layer[..., :3].astype(int) - ours.image.astype(int))[solid]
    assert gap.max() <= 1
    # Away from the subject the plate is the working image too.
    near = cv2.dilate((ours.layer[..., 3] > 0).astype(np.uint8), np.ones((15, 15), np.uint8))
    far = near == 0
    assert np.array_equal(ours.plate[far], ours.image[far])
    # The layer over the plate gives the working image back (the first frame is the photo).
    a = ours.layer[..., 3:].astype(np.float32) / 255.0
    composed = ours.layer[..., :3].astype(np.float32) + (1.0 - a) * ours.plate
    assert np.abs(composed - ours.image).mean() < 1.0


def test_an_enlarged_photo_is_analysed_at_its_own_size(samples, monkeypatch):
    import studio.motion.scene as scene_module

    seen: list[tuple[int, int]] = []
    real = scene_module.find_subject

    def spy(rgb, *args, **kwargs):
        seen.append(rgb.shape[:2])
        return real(rgb, *args, **kwargs)

    monkeypatch.setattr(scene_module, "find_subject", spy)
    rgb = _rgb(samples["portrait"])  # 512x512
    scene = build_scene(rgb, [_plan()])  # 1024x576 needs 2x
    assert seen == [(512, 512)] and scene.image.shape[:2] == (1024, 1024)
    build_scene(rgb, [_plan(256, 144)])  # a smaller output: worked below the photo's size
    assert seen[1][0] < 512


def test_specks_beside_a_subject_do_not_make_it_scattered():
    mask = np.zeros((171, 256), bool)
    mask[20:150, 120:130] = True  # a rocket: 1300 px
    mask[130:160, 40:60] = True  # a glow beside a tower: 600 px, half the rocket
    for x in range(10, 250, 30):  # lights on the pad, a few px each
        mask[165:168, x : x + 3] = True
    assert not _scattered(mask)
    stars = np.zeros((171, 256), bool)
    for y, x in np.random.default_rng(1).integers(5, 165, (40, 2)):
        stars[y : y + 4, x : x + 4] = True
    assert _scattered(stars)
