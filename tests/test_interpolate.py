"""Tests for raising a take's frame rate: the time grid, flow against the baselines, the manifest."""

from __future__ import annotations

import functools
import json

import cv2
import numpy as np
import pytest

from studio.backends import BackendInfo, register, unregister
from studio.backends.base import Backend, RenderContext, Rendered
from studio.backends.engine import EngineBackend
from studio.clips import run_job
from studio.encode import probe_mp4
from studio.interpolate import interpolate, output_count
from studio.jobs import Job, prepare_job
from studio.plan import CameraMove, VariantPlan
from studio.scoring.fidelity import psnr, ssim
from tests.conftest import EXAMPLES


def texture(h: int, w: int, seed: int, cell: int) -> np.ndarray:
    """Smooth random colour blobs about `cell` px across: something optical flow can follow."""
    rng = np.random.default_rng(seed)
    small = rng.integers(30, 225, (h // cell + 2, w // cell + 2, 3), dtype=np.uint8)
    big = cv2.resize(small, (w + 2 * cell, h + 2 * cell), interpolation=cv2.INTER_CUBIC)
    return np.ascontiguousarray(big[cell : cell + h, cell : cell + w])


def numbered(n: int, size: tuple[int, int] = (48, 32)) -> list[np.ndarray]:
    """n frames of a texture sliding 2 px per frame, each different from the others."""
    w, h = size
    tex = texture(h, w + 2 * n, 5, 8)
    return [tex[:, 2 * i : 2 * i + w].copy() for i in range(n)]


# --- the time grid -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("src", "n", "expected"),
    [(6, 25, 100), (8, 25, 75), (16, 81, 122), (16, 80, 120), (24, 25, 25)],
)
def test_output_frame_count_keeps_the_duration_on_the_plans_grid(src, n, expected):
    assert output_count(n, src, 24) == expected
    out = list(interpolate(numbered(n), src, 24))
    assert len(out) == expected
    assert all(f.shape == (32, 48, 3) and f.dtype == np.uint8 for f in out)


def test_output_frames_on_a_source_frame_are_that_frame_and_the_rest_are_new():
    src = numbered(9)
    # 16 -> 24 fps: output frame k shows source time 2k/3, so every third one is a source frame.
    out = list(interpolate(src, 16, 24))
    for k, frame in enumerate(out):
        if k % 3 == 0:
            assert np.array_equal(frame, src[2 * k // 3])
        elif k < len(out) - 1:  # the last one repeats the last source frame (the clip's end)
            assert not any(np.array_equal(frame, s) for s in src)
    assert np.array_equal(out[-1], src[-1])


def test_same_rate_passes_the_frames_through_untouched():
    src = numbered(5)
    out = list(interpolate(iter(src), 24, 24))
    assert len(out) == 5 and all(a is b for a, b in zip(out, src, strict=True))


def test_interpolation_streams_and_survives_a_reused_frame_buffer():
    """A backend may hand out the same array for every frame; a generator that overwrites it
    must still give the same result as distinct frames."""
    src = numbered(4)

    def one_buffer():
        buf = np.empty_like(src[0])
        for f in src:
            buf[...] = f
            yield buf

    got = [f.copy() for f in interpolate(one_buffer(), 6, 24)]
    want = list(interpolate(src, 6, 24))
    assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))


@pytest.mark.parametrize("bad", [0, -6, float("nan"), float("inf"), "6"])
def test_a_frame_rate_that_is_not_a_positive_number_is_refused(bad):
    with pytest.raises(ValueError, match="positive number"):
        list(interpolate(numbered(3), bad, 24))


# --- quality against a true render and the baselines --------------------------------------


@functools.cache
def engine_clips(photo: str, move: str) -> tuple[np.ndarray, np.ndarray]:
    """One camera move rendered twice by the engine: at 6 fps and, as the truth, at 24 fps.

    The engine renders any rate natively, and both renders sample one continuous path (7
    frames at 6 fps are frames 0, 4, ... 24 of the 24 fps render).
    """
    engine = EngineBackend(depth="heuristic")
    rgb = cv2.cvtColor(cv2.imread(str(EXAMPLES / photo)), cv2.COLOR_BGR2RGB)
    cam = CameraMove(move, 1.0, easing="linear")

    def render(frames: int, fps: int) -> np.ndarray:
        plan = VariantPlan(0, 1, 256, 160, frames, fps, camera=cam)
        scene = engine.prepare(rgb, [plan], RenderContext())
        return np.stack(list(engine.render(scene, plan, RenderContext())))

    return render(7, 6), render(25, 24)


def grey(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def test_flow_beats_repetition_and_cross_fade_against_a_true_24fps_render():
    low, truth = engine_clips("coffee.png", "push-in")
    assert all(psnr(low[i], truth[4 * i]) > 60.0 for i in range(7))  # one path, two rates
    between = [k for k in range(25) if k % 4]
    scores = {}
    for method in ("repeat", "blend", "flow"):
        out = list(interpolate(list(low), 6, 24, method))
        assert len(out) == 28
        scores[method] = (
            np.mean([psnr(out[k], truth[k]) for k in between]),
            np.mean([ssim(grey(out[k]), grey(truth[k])) for k in between]),
        )
    # Measured at this size: flow 40.1 dB / 0.988, cross-fade 30.6 / 0.930, repeat 28.2 / 0.908.
    assert scores["flow"][0] > scores["blend"][0] + 5.0, scores
    assert scores["flow"][0] > scores["repeat"][0] + 5.0, scores
    assert scores["flow"][1] > scores["blend"][1] + 0.03, scores


def test_a_moving_edge_is_not_doubled():
    """A square slides right over a background panning left; a cross-fade shows it twice,
    half-transparent; flow shows it once, where it is at the in-between time."""
    H, W, side, y0, x0 = 192, 320, 80, 56, 80
    bg = texture(H, W + 24, 1, 12)
    fg = texture(side, side, 2, 6)

    def frame(half_steps: int) -> np.ndarray:  # square +8 px, background -2 px per half step
        out = bg[:, 12 - 2 * half_steps : 12 - 2 * half_steps + W].copy()
        x = x0 + 8 * half_steps
        out[y0 : y0 + side, x : x + side] = fg
        return out

    truth = frame(1)
    err = {}
    for method in ("blend", "flow"):
        mid = list(interpolate([frame(0), frame(2)], 6, 12, method))[1]
        e = np.abs(mid.astype(np.int32) - truth).sum(axis=2)
        err[method] = (e[y0 : y0 + side, x0 + 8 : x0 + 8 + side].mean(),  # the square itself
                       e[y0 : y0 + side, x0 : x0 + 8].mean())  # where it was: background now  # fmt: skip
    assert err["flow"][0] < 0.05 * err["blend"][0], err
    assert err["flow"][1] < 0.5 * err["blend"][1], err


# --- in a job: a backend that renders below the plan's rate -------------------------------


class LowRateBackend(Backend):
    """Renders each take at `fps` (or at the plan's rate when None) and says so in its facts."""

    id = "low-rate"

    def __init__(self) -> None:
        self.fps: float | None = 8

    def render(self, prepared, plan, ctx):  # not used: render_many is how a model backend works
        raise NotImplementedError

    def render_many(self, prepared, plans, ctx):
        for pos, plan in enumerate(plans):
            fps = self.fps or plan.fps
            n = round(plan.frames * fps / plan.fps)
            tex = texture(plan.height, plan.width + 4 * n, plan.seed % 100, 8)
            frames = [tex[:, 4 * i : 4 * i + plan.width].copy() for i in range(n)]
            facts = {"checkpoint": "fake", "frames": n} | ({"fps": self.fps} if self.fps else {})
            yield pos, Rendered(frames, facts)


LOW_RATE = LowRateBackend()


@pytest.fixture
def low_rate():
    register(BackendInfo("low-rate", "Low rate", "test backend", lambda: LOW_RATE))
    LOW_RATE.fps = 8
    yield LOW_RATE
    unregister("low-rate")


def low_rate_job(samples) -> Job:
    return Job(image=str(samples["product"]), preset="product/glint", backend="low-rate",
               seed=3, variants=2, size=(96, 64), frames=24, fps=24)  # fmt: skip


def test_a_take_rendered_below_the_plans_rate_is_interpolated_scored_and_says_so(
    samples, settings, tmp_path, low_rate
):
    prepared = prepare_job(low_rate_job(samples), settings)
    final = list(run_job(prepared, tmp_path / "job", settings))[-1]
    assert final.done and len(final.clips) == 2
    for clip in final.clips:
        video = probe_mp4(clip.path)
        assert video["frames"] == 24 and video["fps"] == pytest.approx(24)
        manifest = json.loads(clip.manifest.read_text())
        assert manifest["rendered"] == {"fps": 8, "frames": 8}
        assert manifest["interpolated"] == {
            "method": "dis-optical-flow", "from_fps": 8, "to_fps": 24, "frames_added": 16,
        }  # fmt: skip
        assert manifest["plan"]["params"]["rendered"]["fps"] == 8  # the backend's own facts
        # Scored like any take, on the frames the MP4 holds.
        assert manifest["score"]["frames"] == 24 and manifest["score"]["fps"] == 24
        assert clip.score == manifest["score"]
    assert final.ranking is not None


def test_a_take_rendered_at_the_plans_rate_is_not_interpolated(
    samples, settings, tmp_path, low_rate
):
    low_rate.fps = None
    prepared = prepare_job(low_rate_job(samples), settings)
    final = list(run_job(prepared, tmp_path / "job", settings))[-1]
    for clip in final.clips:
        manifest = json.loads(clip.manifest.read_text())
        assert manifest["rendered"] == {"fps": 24, "frames": 24}
        assert manifest["interpolated"] is None
        assert probe_mp4(clip.path)["frames"] == 24
