"""Tests for the embedded motion engine: framing, parallax, smoothness, ambient motion, cancel."""

from __future__ import annotations

import functools
from pathlib import Path

import cv2
import numpy as np
import pytest

from studio.backends.base import RenderContext
from studio.backends.engine import EngineBackend
from studio.errors import Cancelled, JobError
from studio.motion.render import PlanRig
from studio.motion.scene import build_scene
from studio.motion.subject import Subject
from studio.plan import AMBIENT_KINDS, CAMERA_MOVES, Ambient, CameraMove, VariantPlan

EXAMPLES = Path(__file__).resolve().parents[2] / "assets" / "examples"
PHOTOS = Path(__file__).resolve().parents[1] / "photos"
ENGINE = EngineBackend(depth="heuristic")
SIZES = [(160, 90), (90, 160), (120, 120), (96, 120), (149, 99)]


@functools.cache
def photo(name: str) -> np.ndarray:
    path = EXAMPLES / name if (EXAMPLES / name).exists() else PHOTOS / name
    bgr = cv2.imread(str(path))
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean())
    return 10.0 * np.log10(255.0**2 / max(mse, 1e-10))


@functools.cache
def bright_photo() -> np.ndarray:
    """A textured photo with no dark pixel anywhere, so any black in a frame is ours."""
    rng = np.random.default_rng(3)
    noise = cv2.resize(
        rng.random((12, 18)).astype(np.float32), (360, 240), interpolation=cv2.INTER_CUBIC
    )
    img = np.stack([noise, noise[::-1], noise[:, ::-1]], axis=2)
    img = 110 + 140 * (img - img.min()) / (img.max() - img.min())
    cv2.circle(img, (180, 130), 60, (240, 120, 90), -1)  # a subject for the layered path
    return np.clip(img, 0, 255).astype(np.uint8)


@functools.cache
def scene(name: str, width: int = 160, height: int = 90):
    img = bright_photo() if name == "bright" else photo(name)
    return ENGINE.prepare(img, [make_plan(width=width, height=height)], RenderContext())


def make_plan(
    move="push-in", seed=1, width=160, height=90, frames=8, ambient=(), strength=1.0, **cam
):
    return VariantPlan(
        index=0,
        seed=seed,
        width=width,
        height=height,
        frames=frames,
        fps=24,
        camera=CameraMove(move=move, strength=strength, **cam),
        ambient=tuple(ambient),
    )


def render(
    plan: VariantPlan, name: str = "coffee.png", ctx: RenderContext | None = None
) -> list[np.ndarray]:
    return list(ENGINE.render(scene(name, plan.width, plan.height), plan, ctx or RenderContext()))


def test_same_plan_and_seed_gives_byte_identical_frames():
    plan = make_plan("handheld", ambient=[Ambient("wind"), Ambient("fog")])
    first = render(plan)
    # A freshly prepared scene must give the same clip too (the matte is seeded).
    again = list(
        ENGINE.render(
            ENGINE.prepare(photo("coffee.png"), [plan], RenderContext()), plan, RenderContext()
        )
    )
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))


def test_different_seeds_give_visibly_different_clips():
    a = render(make_plan("handheld", seed=1))
    b = render(make_plan("handheld", seed=2))
    diff = np.mean(
        [np.abs(x.astype(int) - y.astype(int)).mean() for x, y in zip(a, b, strict=True)]
    )
    assert diff > 1.0


def test_different_camera_moves_give_visibly_different_clips():
    a = render(make_plan("push-in"))[-1]
    b = render(make_plan("pan"))[-1]
    assert np.abs(a.astype(int) - b.astype(int)).mean() > 2.0


@pytest.mark.parametrize("move", CAMERA_MOVES)
def test_every_camera_move_yields_planned_frames(move):
    frames = render(make_plan(move, frames=5))
    assert len(frames) == 5
    assert all(f.shape == (90, 160, 3) and f.dtype == np.uint8 for f in frames)


@pytest.mark.parametrize("kind", AMBIENT_KINDS)
def test_every_ambient_kind_yields_planned_frames(kind):
    frames = render(make_plan("push-in", frames=5, ambient=[Ambient(kind, 1.0)]))
    assert len(frames) == 5
    assert all(f.shape == (90, 160, 3) and f.dtype == np.uint8 for f in frames)


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("wind", "coffee.png"),
        ("light-sweep", "coffee.png"),
        ("breathing", "astronaut.png"),
        ("clouds", "bright"),
        ("fog", "rocket.jpg"),
        ("shimmer", "rocket.jpg"),
    ],
)
def test_ambient_motion_moves_a_locked_off_shot(kind, name):
    frames = render(make_plan("locked-off", frames=12, ambient=[Ambient(kind, 1.0)]), name)
    change = max(np.abs(frames[0].astype(int) - f.astype(int)).mean() for f in frames[1:])
    assert change > 0.05, kind


def test_ambient_at_zero_strength_is_off():
    plain = render(make_plan("locked-off", frames=4))
    off = render(
        make_plan("locked-off", frames=4, ambient=[Ambient(k, 0.0) for k in AMBIENT_KINDS])
    )
    assert all(np.array_equal(a, b) for a, b in zip(plain, off, strict=True))


def test_locked_off_is_static():
    frames = render(make_plan("locked-off", frames=6))
    assert all(np.array_equal(frames[0], f) for f in frames[1:])


@pytest.mark.parametrize(("width", "height"), SIZES)
@pytest.mark.parametrize("move", CAMERA_MOVES)
def test_every_move_and_aspect_samples_only_inside_the_photo(move, width, height):
    sc = scene("bright", width, height)
    plan = make_plan(
        move, width=width, height=height, frames=6, ambient=[Ambient("wind"), Ambient("clouds")]
    )
    rig = PlanRig(sc, plan)
    h, w = sc.plate.shape[:2]
    for i in range(plan.frames):
        frame = rig.frame(i)
        assert frame.shape == (height, width, 3)
        assert rig.mx.min() >= 0 and rig.mx.max() <= w - 1
        assert rig.my.min() >= 0 and rig.my.max() <= h - 1
        # The photo has no dark pixel, so a dark frame edge would be a border we made.
        edges = np.concatenate([frame[0], frame[-1], frame[:, 0], frame[:, -1]])
        assert edges.max(axis=1).min() > 60


def test_push_in_on_coffee_has_no_black_borders():
    # The coffee photo's bottom and right edges are lit wood: no near-black line there.
    for frame in render(make_plan("push-in", frames=6)):
        for edge in (frame[-1], frame[:, -1], frame[-2], frame[:, -2]):
            lum = edge.max(axis=1)
            assert lum.mean() > 40 and (lum < 8).mean() < 0.05


@pytest.mark.parametrize("move", [m for m in CAMERA_MOVES if m != "locked-off"])
def test_camera_path_is_smooth(move):
    plan = make_plan(move, frames=48)
    rig = PlanRig(scene("coffee.png"), plan)
    cy, cx = plan.height // 2, plan.width // 2
    track = []
    for i in range(plan.frames):
        rig.frame(i)
        track.append((rig.mx[cy, cx] / rig.sc, rig.my[cy, cx] / rig.sc))
    second = np.diff(np.asarray(track, np.float64), n=2, axis=0)
    assert np.sqrt((second**2).sum(axis=1).mean()) <= 0.05, move


def test_orbit_moves_background_against_subject():
    plan = make_plan("orbit", frames=9)
    rig = PlanRig(scene("coffee.png"), plan)
    cy, cx = rig.fmx.shape[0] // 2, rig.fmx.shape[1] // 2  # on the subject in both frames
    rig.frame(0)
    rows, cols = rig.layer_window
    assert rows.start <= cy < rows.stop and cols.start <= cx < cols.stop
    bg0, fg0 = rig.mx[5, 5], rig.fmx[cy, cx]
    rig.frame(8)
    rows, cols = rig.layer_window
    assert rows.start <= cy < rows.stop and cols.start <= cx < cols.stop
    bg1, fg1 = rig.mx[5, 5], rig.fmx[cy, cx]
    assert abs((bg1 - bg0) - (fg1 - fg0)) / rig.sc > 1.0


@pytest.mark.parametrize("name", ["astronaut.png", "coffee.png", "rocket.jpg", "camera.png"])
def test_subject_over_plate_gives_the_photo_back(name):
    plan = make_plan("push-in", width=640, height=360, frames=4)
    sc = ENGINE.prepare(photo(name), [plan], RenderContext())
    assert sc.has_subject
    a = sc.layer[..., 3:].astype(np.float64) / 255.0
    assert psnr(sc.layer[..., :3] + (1.0 - a) * sc.plate, sc.image) >= 40.0
    # As a user sees it: a push-in starts on the framed photo itself.
    rig = PlanRig(sc, plan)
    first = rig.frame(0)
    assert psnr(first, cv2.remap(sc.image, rig.mx, rig.my, cv2.INTER_LINEAR)) >= 40.0


def test_a_given_subject_is_used_at_the_working_size():
    img = bright_photo()  # its subject is a disc at (180, 130), radius 60
    yy, xx = np.mgrid[0 : img.shape[0], 0 : img.shape[1]]
    disc = (np.hypot(xx - 180, yy - 130) < 60).astype(np.float32)
    plan = make_plan("orbit")
    sc = build_scene(img, [plan], vision=None, subject=Subject(alpha=disc, source="given"))
    assert sc.alpha.shape == sc.image.shape[:2] != img.shape[:2]
    assert sc.subject_source == "given"
    cx, cy = sc.subject_center
    assert abs(cx / sc.scale - 180) < 2 and abs(cy / sc.scale - 130) < 2


def test_cancel_stops_rendering():
    ctx = RenderContext()
    frames = ENGINE.render(scene("coffee.png"), make_plan("push-in", frames=40), ctx)
    next(frames)
    ctx.cancel.set()
    with pytest.raises(Cancelled):
        for _ in range(8):
            next(frames)


def test_progress_reaches_one_for_the_plan_index():
    seen: list[tuple[int, float]] = []
    ctx = RenderContext(progress=lambda i, f: seen.append((i, f)))
    plan = VariantPlan(index=3, seed=1, width=64, height=36, frames=9, fps=24)
    list(ENGINE.render(scene("coffee.png", 64, 36), plan, ctx))
    assert seen[-1] == (3, 1.0) and all(i == 3 for i, _ in seen)


def test_flat_grey_photo_animates():
    grey = np.full((120, 200, 3), 128, np.uint8)
    plan = make_plan("orbit", frames=4, ambient=[Ambient(k) for k in AMBIENT_KINDS])
    frames = list(
        ENGINE.render(ENGINE.prepare(grey, [plan], RenderContext()), plan, RenderContext())
    )
    assert len(frames) == 4 and all(f.shape == (90, 160, 3) for f in frames)


def test_tiny_photo_animates():
    tiny = cv2.resize(photo("astronaut.png"), (32, 32), interpolation=cv2.INTER_AREA)
    plan = make_plan("dolly-zoom", frames=4, ambient=[Ambient("breathing")])
    frames = list(
        ENGINE.render(ENGINE.prepare(tiny, [plan], RenderContext()), plan, RenderContext())
    )
    assert len(frames) == 4 and frames[0].shape == (90, 160, 3)
    assert frames[0].mean() > 20


def test_unknown_camera_move_is_refused_with_clear_error():
    with pytest.raises(JobError, match="camera move"):
        render(make_plan("barrel-roll"))


@pytest.mark.parametrize(
    "name, preset",
    [
        ("astronaut.png", "portrait/slow-push-in"),  # life: breath, head turn, blinks
        ("camera.png", "portrait/orbit"),  # a subject the photo's bottom edge cuts off
        ("coffee.png", "product/orbit-reveal"),
        ("chelsea.png", "product/glint"),  # the light sweep shades by the matte
    ],
)
def test_the_layer_laid_only_where_it_lands_gives_the_frames_of_laying_it_everywhere(
    name, preset, monkeypatch
):
    from studio.jobs import Job, prepare_job
    from studio.motion import reach
    from studio.settings import Settings

    path = EXAMPLES / name if (EXAMPLES / name).exists() else PHOTOS / name
    job = Job(image=str(path), preset=preset, seed=3, size=(256, 144), frames=9, fps=12,
              strength=1.8)  # fmt: skip
    prepared = prepare_job(job, Settings.from_env(score=False))
    found = build_scene(prepared.photo.rgb, prepared.plans)
    assert found.has_subject

    def frames():
        out = []
        for plan in prepared.plans:
            rig = PlanRig(found, plan)
            out += [rig.frame(i).copy() for i in range(rig.F)]
        return np.stack(out).astype(np.int16)

    def everything(sx, sy, box, step, shape):
        return slice(0, shape[0]), slice(0, shape[1])

    windowed = frames()
    monkeypatch.setattr(reach, "sampled_window", everything)
    everywhere = frames()
    off = np.abs(windowed - everywhere).max(axis=-1)
    # The same sums on fewer pixels: at most a float rounding apart, a level on a rare pixel.
    assert off.max() <= 1 and (off > 0).mean() < 1e-4, (off.max(), (off > 0).mean())
