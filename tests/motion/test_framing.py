"""Subject-aware framing on photos whose subject sits off-centre: faces and products stay in frame."""

from __future__ import annotations

import functools
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from studio.errors import JobError
from studio.motion.framing import crop_for, face_row, project_box
from studio.motion.render import PlanRig
from studio.motion.scene import build_scene
from studio.motion.subject import Subject
from studio.plan import CameraMove, VariantPlan
from studio.presets import load_library
from studio.variants import plan_variants

ROOT = Path(__file__).resolve().parents[2]
ASPECTS = {"9:16": (90, 160), "1:1": (120, 120), "16:9": (160, 90)}
FACE_PRESETS = ("portrait/orbit", "portrait/documentary", "portrait/slow-push-in")
PRODUCT_PRESETS = ("product/orbit-reveal", "product/floating-drift", "product/slow-push-in")
TAKES = 4


def _read(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


@functools.cache
def photo(name: str) -> np.ndarray:
    """Real portraits with the person off-centre: the astronaut padded on one side (a face
    detector needs a real face), and the cameraman, who stands left of centre."""
    if name == "cameraman":
        return _read(ROOT / "tests" / "photos" / "camera.png")
    astronaut = _read(ROOT / "assets" / "examples" / "astronaut.png")
    fill = [int(v) for v in astronaut[:, :16].reshape(-1, 3).mean(axis=0)]
    side = {"astronaut-left": (0, 0, 0, 512), "astronaut-high": (0, 512, 0, 0)}[name]
    return cv2.copyMakeBorder(astronaut, *side, cv2.BORDER_CONSTANT, value=fill)


@functools.cache
def presets():
    return load_library()


def takes(preset_id: str, aspect: str) -> list[VariantPlan]:
    """The takes a job with this preset gets at this aspect, generic preset focus and all."""
    preset = presets().get(preset_id)
    width, height = ASPECTS[aspect]
    frames = int(round(preset.duration * preset.fps))
    return plan_variants(
        preset, seed=11, n=TAKES, width=width, height=height, frames=frames, fps=preset.fps
    )


@functools.cache
def portrait_scene(name: str):
    plans = [p for a in ASPECTS for pid in FACE_PRESETS for p in takes(pid, a)]
    scene = build_scene(photo(name), plans)
    assert len(scene.faces) == 1, f"{name}: the face detector should find one face"
    return scene


def depth_range(scene, box) -> tuple[float, float]:
    """Parallax weights the rig gives the subject's pixels inside box."""
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    inside = scene.alpha[y0:y1, x0:x1] > 0.5
    depth = scene.depth_fg[y0:y1, x0:x1][inside]
    return float(depth.min()) - scene.subject_depth, float(depth.max()) - scene.subject_depth


def frame_boxes(rig: PlanRig, box, depth=(0.0, 0.0)) -> np.ndarray:
    return project_box(rig.path, rig.sc, (rig.X0, rig.Y0), (rig.W, rig.H), box, depth)


def outside(boxes: np.ndarray, size: tuple[int, int]) -> float:
    """How far (output px) the worst corner of any frame's box lies outside the frame."""
    w, h = size
    over = np.maximum.reduce(
        [-boxes[:, 0], -boxes[:, 1], boxes[:, 2] - w, boxes[:, 3] - h, np.zeros(len(boxes))]
    )
    return float(over.max())


@pytest.mark.parametrize("aspect", list(ASPECTS))
@pytest.mark.parametrize("preset_id", FACE_PRESETS)
@pytest.mark.parametrize("name", ["astronaut-left", "astronaut-high", "cameraman"])
def test_face_stays_whole_in_every_frame(name, preset_id, aspect):
    scene = portrait_scene(name)
    face = scene.faces[0].box
    for plan in takes(preset_id, aspect):
        rig = PlanRig(scene, plan)
        boxes = frame_boxes(rig, face, depth_range(scene, face))
        assert outside(boxes, (rig.W, rig.H)) == 0.0, (
            f"{name} {preset_id} {aspect} take {plan.index}: the face leaves the frame by "
            f"{outside(boxes, (rig.W, rig.H)):.1f} px"
        )


@pytest.mark.parametrize("preset_id", FACE_PRESETS)
@pytest.mark.parametrize("name", ["astronaut-left", "cameraman"])
def test_face_sits_in_the_upper_third_and_centred_across_at_9_16(name, preset_id):
    scene = portrait_scene(name)
    face = scene.faces[0].box
    for plan in takes(preset_id, "9:16"):
        rig = PlanRig(scene, plan)
        boxes = frame_boxes(rig, face)
        row = 0.5 * (boxes[:, 1] + boxes[:, 3]) / rig.H
        across = 0.5 * (boxes[:, 0] + boxes[:, 2]) / rig.W
        assert row.max() < 1 / 3, f"{name} {preset_id}: the face's centre is at {row.max():.2f}"
        assert np.abs(across - 0.5).max() < 0.06, f"{name}: the face is at {across.mean():.2f}"


def test_face_sits_at_its_landscape_row_where_the_photo_leaves_room():
    # A tall photo leaves the 16:9 frame free to go up or down: the face lands on its row.
    scene = portrait_scene("astronaut-high")
    face = scene.faces[0].box
    for preset_id in FACE_PRESETS:
        for plan in takes(preset_id, "16:9"):
            rig = PlanRig(scene, plan)
            row = 0.5 * (frame_boxes(rig, face)[:, 1] + frame_boxes(rig, face)[:, 3]) / rig.H
            assert np.abs(row - face_row(16 / 9)).max() < 0.02, f"{preset_id}: {row.mean():.2f}"


def test_face_wins_over_the_preset_focus_and_a_pinned_point_wins_over_the_face():
    scene = portrait_scene("astronaut-left")
    plan = takes("portrait/slow-push-in", "9:16")[0]
    assert plan.camera.focus != (0.5, 0.5)  # the preset's generic [0.5, 0.4], jittered
    assert PlanRig(scene, plan).framing.kind == "face"

    w = scene.image.shape[1]
    pinned = replace(plan, params={"framing": [0.7, 0.5]})
    rig = PlanRig(scene, pinned)
    assert rig.framing.kind == "explicit"
    # The pinned point is in the frame's middle (the photo's edges allowing).
    assert abs(rig.X0 - (0.7 * w - 0.5)) < 0.02 * w


@pytest.mark.parametrize("value", [[1.5, 0.5], "middle", [0.5]])
def test_a_bad_framing_point_is_refused_with_a_clear_error(value):
    plan = VariantPlan(index=0, seed=1, width=64, height=64, frames=2, fps=24,
                       params={"framing": value})  # fmt: skip
    with pytest.raises(JobError, match="framing point must be two numbers between 0 and 1"):
        PlanRig(portrait_scene("cameraman"), plan)


def product_photo(spans: list[tuple[int, int, int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """A 900x300 (3:1) textured photo with a bright object made of the given rectangles
    (x0, y0, x1, y1), and the object's soft matte."""
    rng = np.random.default_rng(5)
    noise = cv2.resize(rng.random((15, 45)).astype(np.float32), (900, 300), cv2.INTER_CUBIC)
    img = np.stack([60 + 40 * noise, 70 + 30 * noise, 90 + 30 * noise], axis=2)
    mask = np.zeros((300, 900), np.float32)
    for x0, y0, x1, y1 in spans:
        mask[y0:y1, x0:x1] = 1.0
    mask = cv2.GaussianBlur(mask, (0, 0), 1.5)
    shade = np.linspace(1.0, 0.75, 300, dtype=np.float32)[:, None, None]
    colour = np.array([230, 160, 60], np.float32) * shade
    img = img * (1.0 - mask[..., None]) + colour * mask[..., None]
    return np.clip(img, 0, 255).astype(np.uint8), mask


# A wide product across 80% of the photo, heavier on its left (a body and a long thin neck),
# so its centre of mass and its box centre differ; and a smaller one left of centre, which
# fits a 1:1 frame but not a centred one.
WIDE = [(90, 70, 430, 240), (430, 135, 810, 175)]
SMALL = [(130, 90, 320, 230)]


@functools.cache
def product_scene(kind: str):
    img, mask = product_photo(WIDE if kind == "wide" else SMALL)
    plans = [p for a in (*ASPECTS, "3:1") for pid in PRODUCT_PRESETS for p in product_takes(pid, a)]
    scene = build_scene(img, plans, subject=Subject(alpha=mask, source="automatic"))
    assert scene.has_subject and not scene.faces
    return scene


def product_takes(preset_id: str, aspect: str) -> list[VariantPlan]:
    if aspect != "3:1":
        return takes(preset_id, aspect)
    plans = takes(preset_id, "16:9")
    return [replace(p, width=240, height=80) for p in plans]


@pytest.mark.parametrize("aspect", ["1:1", "16:9", "3:1"])
@pytest.mark.parametrize("preset_id", PRODUCT_PRESETS)
def test_a_product_that_fits_keeps_both_ends_in_every_frame(preset_id, aspect):
    # The small product fits every aspect here; the wide one only its own 3:1.
    kinds = ("small", "wide") if aspect == "3:1" else ("small",)
    for kind in kinds:
        scene = product_scene(kind)
        for plan in product_takes(preset_id, aspect):
            rig = PlanRig(scene, plan)
            boxes = frame_boxes(rig, scene.subject_box, depth_range(scene, scene.subject_box))
            assert outside(boxes, (rig.W, rig.H)) == 0.0, (
                f"{kind} product, {preset_id} {aspect} take {plan.index}: cut by "
                f"{outside(boxes, (rig.W, rig.H)):.1f} px"
            )


@pytest.mark.parametrize("preset_id", PRODUCT_PRESETS)
def test_a_product_too_wide_for_the_frame_is_centred_on_its_centre_of_mass(preset_id):
    scene = product_scene("wide")
    cx, cy = scene.subject_center
    x0, _, x1, _ = scene.subject_box
    assert (x0 + x1) / 2 - cx > 0.05 * scene.image.shape[1]  # the test means something
    for plan in takes(preset_id, "1:1"):
        rig = PlanRig(scene, plan)
        mid = frame_boxes(rig, (cx, cy, cx, cy))[plan.frames // 2]
        assert abs(mid[0] / rig.W - 0.5) < 0.03, f"take {plan.index}: at {mid[0] / rig.W:.2f}"
        # Top to bottom it still fits, and is kept whole.
        boxes = frame_boxes(rig, scene.subject_box, depth_range(scene, scene.subject_box))
        assert boxes[:, 1].min() >= 0 and boxes[:, 3].max() <= rig.H


def test_crop_for_keeps_a_small_product_whole_in_a_square():
    _, mask = product_photo(SMALL)
    subject = Subject(alpha=mask, source="automatic")
    x, y, w, h = crop_for(subject, (900, 300), "1:1")
    assert (w, h) == (300, 300) and y == 0
    assert x <= 130 and x + w >= 320, f"crop {x}..{x + w} cuts the product at 130..320"
    # A take at another size gets the same cut, in its own pixels.
    x2, y2, w2, h2 = crop_for(subject, (450, 150), (1, 1))
    assert (w2, h2) == (150, 150) and abs(x2 - x / 2) <= 1


def test_crop_for_frames_a_face_from_the_scene_in_photo_pixels():
    scene = portrait_scene("astronaut-left")  # the photo is 1024x512
    x, y, w, h = crop_for(scene, (1024, 512), "9:16")
    assert (w, h) == (288, 512)
    fx0, fy0, fx1, fy1 = (v / scene.scale for v in scene.faces[0].box)
    assert x <= fx0 and fx1 <= x + w
    assert abs((fx0 + fx1) / 2 - (x + w / 2)) < 0.05 * w

    tall = portrait_scene("astronaut-high")  # 512x1024: a 16:9 crop can go up or down
    x, y, w, h = crop_for(tall, (512, 1024), 16 / 9)
    fy0, fy1 = (v / tall.scale for v in tall.faces[0].box[1::2])
    assert abs(((fy0 + fy1) / 2 - y) / h - face_row(16 / 9)) < 0.02


def test_without_a_subject_the_plan_focus_frames_the_photo():
    img, _ = product_photo([])
    plan = VariantPlan(index=0, seed=1, width=120, height=120, frames=24, fps=24,
                       camera=CameraMove("handheld", 0.5, focus=(0.3, 0.5)))  # fmt: skip
    scene = build_scene(img, [plan], subject=Subject(alpha=np.zeros((300, 900), np.float32),
                                                     source="none"))  # fmt: skip
    rig = PlanRig(scene, plan)
    assert rig.framing.kind == "focus"
    assert abs(rig.X0 - (0.3 * scene.image.shape[1] - 0.5)) < 1.0
