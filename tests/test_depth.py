"""Tests for depth sources and subject separation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from studio import depth as depth_mod
from studio.depth import DepthAnythingDepth, HeuristicDepth, get_depth_source
from studio.errors import BackendError
from studio.segment import subject_matte

EXAMPLES = Path(__file__).resolve().parents[1] / "assets" / "examples"


def photo(name: str, width: int = 320) -> np.ndarray:
    rgb = cv2.cvtColor(cv2.imread(str(EXAMPLES / name)), cv2.COLOR_BGR2RGB)
    h, w = rgb.shape[:2]
    return cv2.resize(rgb, (width, round(h * width / w)), interpolation=cv2.INTER_AREA)


def test_heuristic_depth_is_unit_range_float32_of_image_size():
    img = photo("rocket.jpg")
    d = HeuristicDepth().estimate(img)
    assert d.shape == img.shape[:2] and d.dtype == np.float32
    assert d.min() >= 0.0 and d.max() <= 1.0


def test_bottom_of_a_landscape_is_nearer_than_its_sky():
    d = HeuristicDepth().estimate(photo("rocket.jpg"))
    h = d.shape[0]
    assert d[int(0.85 * h) :].mean() > d[: int(0.25 * h)].mean() + 0.15


def test_product_matte_finds_the_cup_not_the_table():
    alpha = subject_matte(photo("coffee.png"))
    h, w = alpha.shape
    assert alpha[int(0.3 * h), int(0.48 * w)] > 0.8  # the crema in the cup
    for y, x in ((5, 5), (5, w - 6), (h - 6, w - 6)):
        assert alpha[y, x] < 0.1


def test_subject_is_nearer_than_its_surroundings():
    img = photo("coffee.png")
    alpha = subject_matte(img)
    d = HeuristicDepth().estimate(img, alpha)
    assert d[alpha > 0.8].mean() > d[alpha < 0.05].mean() + 0.2


def test_portrait_matte_keeps_face_and_body_together():
    alpha = subject_matte(photo("astronaut.png"))
    h, w = alpha.shape
    assert alpha[int(0.27 * h), int(0.43 * w)] > 0.5  # face
    assert alpha[int(0.75 * h), int(0.2 * w)] > 0.5  # suit


@pytest.mark.parametrize(
    "img",
    [
        np.full((90, 160, 3), 128, np.uint8),
        np.zeros((40, 40, 3), np.uint8),
        np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8),
        np.full((6, 300, 3), 200, np.uint8),
    ],
    ids=["flat-grey", "black", "tiny-noise", "sliver"],
)
def test_odd_images_give_valid_matte_and_depth(img):
    alpha = subject_matte(img)
    d = HeuristicDepth().estimate(img, alpha)
    for arr in (alpha, d):
        assert arr.shape == img.shape[:2] and np.isfinite(arr).all()
        assert arr.min() >= 0.0 and arr.max() <= 1.0


def test_all_subject_image_does_not_crash():
    img = np.zeros((120, 120, 3), np.uint8)
    img[...] = (20, 20, 20)
    img[2:-2, 2:-2] = (230, 60, 40)  # the "subject" fills the whole frame
    alpha = subject_matte(img)
    assert alpha.shape == (120, 120) and np.isfinite(alpha).all()


def test_depth_module_does_not_import_torch():
    code = "import sys, studio.depth, studio.backends.engine; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=EXAMPLES.parents[1],
    )
    assert out.stdout.split() == ["False", "False"]


def test_depth_anything_is_unavailable_without_cached_weights(monkeypatch):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", lambda *a, **k: None)
    assert DepthAnythingDepth().available() is False


def test_auto_falls_back_to_heuristic_when_model_missing(monkeypatch):
    monkeypatch.setattr(depth_mod.DepthAnythingDepth, "available", lambda self: False)
    assert isinstance(get_depth_source("auto"), HeuristicDepth)
    with pytest.raises(BackendError):
        get_depth_source("depth-anything")


def test_auto_prefers_depth_anything_when_cached(monkeypatch):
    monkeypatch.setattr(depth_mod.DepthAnythingDepth, "available", lambda self: True)
    assert isinstance(get_depth_source("auto"), DepthAnythingDepth)


def test_unknown_depth_source_is_refused():
    with pytest.raises(BackendError, match="Unknown depth source"):
        get_depth_source("lidar")
