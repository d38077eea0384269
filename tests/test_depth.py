"""Tests for depth sources and subject separation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from studio.errors import BackendError
from studio.motion import depth as depth_mod
from studio.motion.depth import DepthAnythingDepth, HeuristicDepth, get_depth_source
from studio.motion.matte import subject_matte

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
    code = "import sys, studio.motion.depth, studio.backends.engine; print('torch' in sys.modules, 'transformers' in sys.modules)"
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


LEARNED_DEPTH_SCRIPT = r"""
import json, sys
import numpy as np
from studio.backends import get_backend
from studio.backends.base import RenderContext
from studio.motion.depth import DepthAnythingDepth, get_depth_source
from studio.images import load_photo
from studio.presets import load_library
from studio.variants import plan_variants

source = get_depth_source("auto")
photo = load_photo(sys.argv[1]).rgb
depth = source.estimate(photo)
engine = get_backend("engine")
plan = plan_variants(load_library().get("scenic/parallax-orbit"), seed=1, n=1, width=128, height=72,
                     frames=6, fps=12)[0]
frames = list(engine.render(engine.prepare(photo, [plan], RenderContext()), plan, RenderContext()))
print(json.dumps({"source": type(source).__name__, "engine": type(engine.depth_source()).__name__,
                  "shape": list(depth.shape), "lo": float(depth.min()), "hi": float(depth.max()),
                  "frames": len(frames)}))
"""


def test_learned_depth_is_used_from_the_local_cache_when_present(tmp_path):
    # Lay the tiny model out exactly as huggingface_hub caches a download, then run the real
    # loading code offline in a fresh process (the hub reads its cache path at import).
    import json

    from studio.settings import Settings
    from tests.tiny_pipelines import in_hub_cache, save_tiny_depth_anything

    root = EXAMPLES.parents[1]
    in_hub_cache(tmp_path / "hub", Settings().depth_model, save_tiny_depth_anything)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HF_HUB_OFFLINE": "1",
           "HF_HUB_CACHE": str(tmp_path / "hub"), "STUDIO_DEPTH": "auto"}  # fmt: skip
    photo = str(EXAMPLES / "rocket.jpg")
    run = subprocess.run([sys.executable, "-c", LEARNED_DEPTH_SCRIPT, photo], cwd=root, env=env,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["source"] == report["engine"] == "DepthAnythingDepth"
    # Random weights give a flat map; the point is the real load and inference path.
    assert report["shape"] == [427, 640] and 0.0 <= report["lo"] <= report["hi"] <= 1.0
    assert report["frames"] == 6

    # STUDIO_DEPTH=heuristic overrides the cached model.
    env["STUDIO_DEPTH"] = "heuristic"
    script = LEARNED_DEPTH_SCRIPT.replace(
        'get_depth_source("auto")', 'get_depth_source("heuristic")'
    )
    run = subprocess.run([sys.executable, "-c", script, photo], cwd=root, env=env,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert json.loads(run.stdout.strip().splitlines()[-1])["engine"] == "HeuristicDepth"


def test_learned_depth_loads_through_the_model_manager_from_the_configured_repo(tmp_path):
    from studio.models import ModelManager
    from studio.settings import Settings
    from tests.tiny_pipelines import in_hub_cache, save_tiny_depth_anything

    settings = Settings(hub_cache=tmp_path / "hub", depth_model="someone/my-depth")
    in_hub_cache(settings.hub_cache, "someone/my-depth", save_tiny_depth_anything)
    manager = ModelManager({}, settings=settings)
    source = get_depth_source("depth-anything", models=manager)
    img = photo("rocket.jpg", 160)
    first, second = source.estimate(img), source.estimate(img)
    assert first.shape == img.shape[:2] and np.array_equal(first, second)
    [entry] = manager.cache.entries()  # loaded once, and counted in the manager's budget
    assert entry.label == "someone/my-depth" and entry.nbytes > 0
    assert manager.free_bytes("cpu") == manager.budget("cpu") - entry.nbytes
