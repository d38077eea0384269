"""Loops: a seamless take's last frame flows into its first on every preset; boomerang and cross-fade."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from studio.encode import probe_mp4
from studio.errors import JobError
from studio.jobs import Job, form_job, validate_job
from studio.loops import (
    boomerang,
    crossfade_length,
    crossfade_loop,
    loop_frames,
    plan_loop,
    with_loop,
)
from studio.motion.depth import HeuristicDepth
from studio.motion.life import BLINK_GAP_S, LifeRig
from studio.motion.render import PlanRig
from studio.motion.scene import build_scene
from studio.plan import Ambient, CameraMove, VariantPlan
from studio.presets import load_library
from studio.variants import plan_variants

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "assets" / "examples"
PHOTO = {"portrait": "astronaut.png", "product": "coffee.png", "scenic": "rocket.jpg"}
# Small frames keep every preset's four takes quick; the aspect is the preset's own.
SIZE = {"1:1": (128, 128), "4:5": (128, 160), "16:9": (192, 108), "9:16": (108, 192)}
LIB = load_library()
SEED = 7


@functools.cache
def photo(name: str) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(EXAMPLES / name)), cv2.COLOR_BGR2RGB)


@functools.cache
def scene(name: str, width: int, height: int):
    plan = VariantPlan(index=0, seed=1, width=width, height=height, frames=8, fps=24)
    return build_scene(photo(name), [plan], HeuristicDepth())


def render(name: str, plan: VariantPlan) -> list[np.ndarray]:
    rig = PlanRig(scene(name, plan.width, plan.height), plan)
    return [rig.frame(i).copy() for i in range(plan.frames)]


def mad(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two frames, in 8-bit levels."""
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def seam(frames: list[np.ndarray]) -> tuple[float, float]:
    """(last frame against the first, the largest step between two neighbouring frames)."""
    steps = [mad(a, b) for a, b in zip(frames[:-1], frames[1:], strict=True)]
    return mad(frames[-1], frames[0]), max(steps)


def preset_plans(preset_id: str, loop: str | None) -> list[VariantPlan]:
    preset = LIB.get(preset_id)
    width, height = SIZE[preset.aspect]
    frames = int(round(preset.duration * preset.fps))
    plans = plan_variants(
        preset, seed=SEED, n=4, width=width, height=height, frames=frames, fps=preset.fps
    )
    return with_loop(plans, loop, "engine")


@pytest.mark.parametrize("preset_id", [p.id for p in LIB])
def test_every_preset_loops_seamlessly_with_no_jump_at_the_seam(preset_id):
    family = LIB.get(preset_id).family
    for plan in preset_plans(preset_id, "seamless"):
        assert plan.periodic
        last_to_first, largest_step = seam(render(PHOTO[family], plan))
        assert last_to_first <= largest_step, (plan.index, plan.camera, last_to_first, largest_step)


@pytest.mark.parametrize(
    "preset_id",
    ["product/orbit-reveal", "portrait/documentary", "portrait/slow-push-in",
     "scenic/drifting-clouds", "product/vertigo-pop", "scenic/tilt-reveal"],
)  # fmt: skip
def test_the_same_takes_played_once_jump_at_the_seam(preset_id):
    """The seam measure can fail: without the loop, the last frame is far from the first."""
    family = LIB.get(preset_id).family
    for plan in preset_plans(preset_id, None):
        last_to_first, largest_step = seam(render(PHOTO[family], plan))
        assert last_to_first > 4 * largest_step, (plan.index, last_to_first, largest_step)


# Each ambient motion alone, under a still camera, on a photo that has what it moves
# (the rocket's trees, lake and sky; the cup's gloss; the astronaut's face).
AMBIENT_ONLY = {
    "wind": ("rocket.jpg", (Ambient("wind", 0.8),)),
    "shimmer": ("rocket.jpg", (Ambient("shimmer", 0.8),)),
    "clouds": ("rocket.jpg", (Ambient("clouds", 0.8),)),
    "fog": ("rocket.jpg", (Ambient("fog", 0.8),)),
    "light-sweep": ("coffee.png", (Ambient("light-sweep", 0.8),)),
    "gentle breath": (
        "astronaut.png",
        (Ambient("breathing", 0.6), Ambient("blink", 1.0), Ambient("head-turn", 0.6)),
    ),
}


@pytest.mark.parametrize("name", list(AMBIENT_ONLY))
@pytest.mark.parametrize("frames,fps", [(72, 24), (50, 12)])
def test_ambient_motion_alone_loops_seamlessly(name, frames, fps):
    photo_name, ambient = AMBIENT_ONLY[name]
    size = (160, 160) if photo_name == "astronaut.png" else (192, 108)
    for seed in (3, 4):
        plan = VariantPlan(
            index=0, seed=seed, width=size[0], height=size[1], frames=frames, fps=fps,
            camera=CameraMove("locked-off", 0.0), ambient=ambient, loop="seamless",
        )  # fmt: skip
        last_to_first, largest_step = seam(render(photo_name, plan))
        assert largest_step > 0.02, (
            "the effect moves nothing on this photo: the test would be empty"
        )
        assert last_to_first <= largest_step, (seed, last_to_first, largest_step)


@pytest.mark.parametrize("name", ["clouds", "fog"])
def test_drifting_effects_played_once_do_not_come_back(name):
    photo_name, ambient = AMBIENT_ONLY[name]
    plan = VariantPlan(
        index=0, seed=3, width=192, height=108, frames=72, fps=24,
        camera=CameraMove("locked-off", 0.0), ambient=ambient,
    )  # fmt: skip
    last_to_first, largest_step = seam(render(photo_name, plan))
    assert last_to_first > 4 * largest_step


def test_a_seamless_push_in_comes_back_as_slowly_as_it_went():
    """Out and back in the same time, but only half-way: no faster than the one-way push."""
    plan = preset_plans("product/slow-push-in", None)[0]
    looped = preset_plans("product/slow-push-in", "seamless")[0]
    _, once = seam(render("coffee.png", plan))
    _, loop = seam(render("coffee.png", looped))
    assert loop <= 1.2 * once


# -- boomerang and cross-fade: frames from any backend --------------------------------------


def numbered(n: int) -> list[np.ndarray]:
    return [np.full((2, 3, 3), i, np.uint8) for i in range(n)]


def test_boomerang_plays_forwards_then_back_without_repeating_an_end_frame():
    out = [int(f[0, 0, 0]) for f in boomerang(iter(numbered(6)))]
    assert out == [0, 1, 2, 3, 4, 5, 4, 3, 2, 1]
    # Played on repeat, no frame follows itself: the turn and the restart are both clean.
    looped = out + out[:1]
    assert all(a != b for a, b in zip(looped[:-1], looped[1:], strict=True))


def test_boomerang_keeps_its_own_copies_of_a_reused_buffer():
    buf = np.zeros((2, 2, 3), np.uint8)

    def reused():
        for i in range(4):
            buf[...] = i
            yield buf

    assert [int(f[0, 0, 0]) for f in [f.copy() for f in boomerang(reused())]] == [0, 1, 2, 3, 2, 1]


def test_boomerang_of_a_real_take_meets_the_seam_measure():
    plan = preset_plans("scenic/drifting-clouds", None)[0]
    frames = list(boomerang(render("rocket.jpg", plan)))
    assert len(frames) == 2 * plan.frames - 2
    last_to_first, largest_step = seam(frames)
    assert last_to_first <= largest_step


def test_crossfade_turns_a_take_that_does_not_loop_into_one_that_does():
    # A one-way push stands in for a model take: its end is far from its start.
    plan = preset_plans("product/slow-push-in", None)[0]
    take = render("coffee.png", plan)
    before, _ = seam(take)
    k = crossfade_length(plan.frames, plan.fps)
    assert k == 12  # half a second at 24 fps
    looped = list(crossfade_loop(iter(take), k))
    assert len(looped) == plan.frames - k
    last_to_first, largest_step = seam(looped)
    assert last_to_first <= largest_step < before / 4
    # It starts on a clean frame of the take, not on a blend.
    assert np.array_equal(looped[0], take[k])


def test_crossfade_of_a_take_too_short_to_blend_is_the_take():
    frames = numbered(2)
    assert crossfade_length(2, 24) == 0
    assert [int(f[0, 0, 0]) for f in crossfade_loop(iter(frames), 0)] == [0, 1]


def test_a_model_backend_gets_a_crossfade_where_the_engine_renders_a_seamless_loop():
    assert plan_loop("seamless", "engine") == "seamless"
    assert plan_loop("seamless", "svd") == "crossfade"
    assert plan_loop("boomerang", "svd") == "boomerang"
    assert plan_loop(None, "svd") is None
    plan = VariantPlan(index=0, seed=1, width=4, height=4, frames=30, fps=24, loop="crossfade")
    assert not plan.periodic
    assert len(list(loop_frames(iter(numbered(30)), plan))) == 30 - crossfade_length(30, 24)


# -- the loop travels: job, plan, manifest, command line -----------------------------------


def test_a_plan_keeps_its_loop_through_its_manifest_form():
    plan = preset_plans("portrait/orbit", "seamless")[1]
    again = VariantPlan.from_dict(json.loads(json.dumps(plan.to_dict())))
    assert again == plan and again.loop == "seamless"
    old = plan.to_dict()
    del old["loop"]  # a manifest written before loops existed
    assert VariantPlan.from_dict(old).loop is None


def test_a_job_refuses_an_unknown_loop_in_one_sentence():
    with pytest.raises(JobError, match="Loop must be seamless or boomerang; got 'spiral'"):
        validate_job(Job(image="a.png", preset="product/glint", loop="spiral"))
    validate_job(Job(image="a.png", preset="product/glint", loop="boomerang"))
    assert form_job(image="a.png", preset="product/glint", loop="").loop is None


def test_generate_loop_boomerang_writes_clips_twice_as_long_less_two(tmp_path):
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "studio", "generate", str(EXAMPLES / "coffee.png"),
         "--preset", "product/orbit-reveal", "--variants", "1", "--seed", "3", "--size", "96x96",
         "--frames", "9", "--fps", "12", "--loop", "boomerang", "--out", str(out), "-q"],
        cwd=ROOT, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                       "STUDIO_USER_PRESETS_DIR": str(tmp_path / "none")},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (clip,) = out.glob("*.mp4")
    assert probe_mp4(clip)["frames"] == 16
    plan = json.loads(clip.with_suffix(".json").read_text())["plan"]
    assert plan["loop"] == "boomerang" and plan["frames"] == 9


def test_generate_refuses_an_unknown_loop_in_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "studio", "generate", str(EXAMPLES / "coffee.png"),
         "--preset", "product/glint", "--loop", "spiral", "--out", str(tmp_path / "out")],
        cwd=ROOT, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: argument --loop: invalid choice: 'spiral'"), line
    assert "seamless" in line and "boomerang" in line


def blink_gap_across_the_seam(plan: VariantPlan) -> float:
    """Seconds from the loop's last blink to its first one the next time round."""
    closure = LifeRig(scene("astronaut.png", plan.width, plan.height), plan).closure
    shut = np.flatnonzero(closure >= 1.0)
    assert len(shut), "no blink at all"
    starts = shut[np.r_[True, np.diff(shut) > 1]]
    return (starts[0] + plan.frames - starts[-1]) / plan.fps  # the period, for one blink


def test_a_looped_portrait_keeps_its_blinks_apart_across_the_seam():
    def plan(seed, loop):
        return VariantPlan(
            index=0, seed=seed, width=160, height=160, frames=60, fps=12,
            ambient=(Ambient("blink", 1.0),), camera=CameraMove("locked-off", 0.0), loop=loop,
        )  # fmt: skip

    looped = [blink_gap_across_the_seam(plan(seed, "seamless")) for seed in range(16)]
    assert min(looped) >= BLINK_GAP_S[0] - 1.0 / 12  # peaks are snapped to frames
    once = [blink_gap_across_the_seam(plan(seed, None)) for seed in range(16)]
    assert min(once) < BLINK_GAP_S[0]  # played once, nothing keeps the wrap-round apart
