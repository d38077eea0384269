"""Model backends end to end: tiny random-weight pipelines through the real variant generator."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio import backends as backends_module
from studio.audio import probe_audio
from studio.backends import BackendInfo, family_backend
from studio.backends.base import RenderContext
from studio.backends.diffusion import fit_frames
from studio.clips import run_job
from studio.encode import probe_mp4
from studio.errors import BackendError, Cancelled
from studio.jobs import Job, prepare_job
from studio.models import ModelManager, get_manager, set_manager
from studio.plan import VariantPlan
from studio.settings import Settings
from tests.tiny_pipelines import tiny_catalog, tiny_folder

os.environ["HF_HUB_OFFLINE"] = "1"  # nothing in these tests may reach the hub

# (backend id, tiny pipeline, frames, plan fps, size): each plan asks for the model's own rate,
# so the clip is the model's frames, none added. SVD is the slowest tiny model, so it makes
# fewer frames at its smallest size; CogVideoX renders its fixed 9 frames at 32x32 and is
# resized up; CogVideoX 1.5 makes 17 frames (16k+1); HunyuanVideo 1.5 a 16x12 video, resized.
CASES = [
    ("svd-xt", "svd", 4, 7, (64, 64)),
    ("ltx-video", "ltx", 9, 24, (96, 64)),
    ("cogvideox-5b-i2v", "cogvideox", 9, 8, (96, 64)),
    ("wan2.1-i2v-480p", "wan", 9, 16, (96, 64)),
    ("wan2.2-ti2v-5b", "wan2.2-ti2v", 9, 24, (96, 64)),
    ("skyreels-v2-i2v-1.3b", "skyreels", 9, 24, (96, 64)),
    ("ltx-2", "ltx2", 9, 24, (96, 64)),
    ("wan2.2-i2v-a14b", "wan2.2-a14b", 9, 16, (96, 64)),
    ("hunyuanvideo-1.5-i2v-480p", "hunyuan15", 9, 24, (96, 64)),
    ("cogvideox1.5-5b-i2v", "cogvideox1.5", 17, 16, (96, 64)),
]


@pytest.fixture(scope="module", autouse=True)
def fresh_manager():
    # Fresh registries too: a registry keeps the checkpoints of the catalog it first read.
    saved = dict(backends_module._registries)
    backends_module._registries.clear()
    set_manager(ModelManager(tiny_catalog()))
    yield
    set_manager(None)
    backends_module._registries.clear()
    backends_module._registries.update(saved)


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    rgb = np.zeros((90, 160, 3), np.uint8)
    rgb[..., 0] = np.linspace(0, 255, 160, dtype=np.uint8)[None]
    rgb[30:60, 60:100] = (230, 200, 40)
    path = tmp_path_factory.mktemp("photo") / "product.png"
    Image.fromarray(rgb).save(path)
    return path


def _job(
    photo: Path, backend: str, family: str, frames: int, size=(96, 64), fps=24, **params
) -> Job:
    return Job(
        image=str(photo),
        preset="product/slow-push-in",
        backend=backend,
        seed=7,
        size=size,
        frames=frames,
        fps=fps,
        params={"model_path": str(tiny_folder(family)), "steps": 2, **params},
    )


@pytest.mark.parametrize(
    ("backend", "family", "frames", "fps", "size"), CASES, ids=[c[0] for c in CASES]
)
def test_each_family_renders_four_valid_clips(photo, tmp_path, backend, family, frames, fps, size):
    settings = Settings.from_env()
    prepared = prepare_job(_job(photo, backend, family, frames, size, fps), settings)
    updates = list(run_job(prepared, tmp_path, settings))
    clips = updates[-1].clips
    assert updates[-1].done and len(clips) == 4
    assert sum(1 for u in updates if u.new_clip is not None) == 4  # streamed one by one
    for clip in clips:
        info = probe_mp4(clip.path)
        assert (info["frames"], info["width"], info["height"]) == (frames, *size)
        assert info["fps"] == fps
        rendered = clip.plan["params"]["rendered"]
        assert rendered["checkpoint"] == backend and rendered["steps"] == 2
        assert rendered["fps"] == fps == get_manager().catalog[backend].fps  # its own rate
        assert clip.manifest_data["rendered"] == {"fps": fps, "frames": frames}
        assert clip.manifest_data["interpolated"] is None  # the plan asked for that rate
    assert len({c.seed for c in clips}) == 4


def test_ltx2_sound_reaches_every_clip_as_aac_as_long_as_the_video(photo, tmp_path):
    settings = Settings.from_env()
    prepared = prepare_job(_job(photo, "ltx-2", "ltx2", 9), settings)
    clips = list(run_job(prepared, tmp_path, settings))[-1].clips
    assert len(clips) == 4
    for clip in clips:
        sound = probe_audio(clip.path)  # what a player finds in the file
        assert sound is not None and sound["codec"] == "aac"
        assert sound["rate"] == 16000 and sound["layout"] == "stereo"  # the tiny vocoder's
        assert abs(sound["seconds"] - 9 / 24) < 0.1  # the clip's 9 frames at 24 fps
        assert probe_mp4(clip.path)["frames"] == 9  # the video stream is still whole
        recorded = clip.manifest_data["video"]["audio"]
        assert recorded == {"codec": "aac", "rate": 16000, "channels": 2, "seconds": 0.375}
        model = clip.plan["params"]["rendered"]["audio"]  # what the model itself made
        assert model["rate"] == 16000 and 0.2 < model["seconds"] < 0.5  # 9 frames at 24 fps
    assert not list(tmp_path.glob(".*"))  # no temp WAV or MP4 left behind


def test_a_silent_model_makes_clips_without_a_sound_track(photo, tmp_path):
    settings = Settings.from_env()
    prepared = prepare_job(_job(photo, "ltx-video", "ltx", 9), settings)
    clip = list(run_job(prepared, tmp_path, settings))[-1].clips[0]
    assert probe_audio(clip.path) is None and "audio" not in clip.manifest_data["video"]


def test_second_job_reuses_the_loaded_pipeline(photo, tmp_path):
    settings = Settings.from_env()
    manager = get_manager()
    for run in range(2):
        prepared = prepare_job(_job(photo, "ltx-video", "ltx", 9), settings)
        list(run_job(prepared, tmp_path / str(run), settings))
    assert sum(1 for e in manager.loaded() if e.checkpoint.id == "ltx-video") == 1
    assert manager.loads <= len(CASES)  # each checkpoint loaded once in this module


def test_out_of_memory_is_explained_memory_freed_and_next_call_works(photo, tmp_path, monkeypatch):
    import torch

    settings = Settings.from_env()
    manager = get_manager()
    prepared = prepare_job(_job(photo, "ltx-video", "ltx", 9, batch=1), settings)
    pipe_cls = type(manager.get(prepared.backend.checkpoint, prepared.plans[0].params).pipe)
    real_call = pipe_cls.__call__

    def out_of_memory(self, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(pipe_cls, "__call__", out_of_memory)
    with pytest.raises(BackendError, match="ran out of GPU memory.*fewer frames or a smaller size"):
        list(run_job(prepared, tmp_path / "oom", settings))
    assert not any(e.checkpoint.id == "ltx-video" for e in manager.loaded())  # evicted
    assert not list((tmp_path / "oom").glob("*.mp4"))

    monkeypatch.setattr(pipe_cls, "__call__", real_call)
    prepared = prepare_job(_job(photo, "ltx-video", "ltx", 9), settings)
    assert len(list(run_job(prepared, tmp_path / "again", settings))[-1].clips) == 4


def test_cancel_from_a_step_interrupts_and_leaves_no_clips(photo, tmp_path):
    settings = Settings.from_env()
    prepared = prepare_job(_job(photo, "wan2.1-i2v-480p", "wan", 9), settings)
    ctx = RenderContext()
    ctx.progress = lambda index, fraction: ctx.cancel.set()  # Cancel pressed during step 1
    with pytest.raises(Cancelled):
        list(run_job(prepared, tmp_path, settings, ctx))
    assert not list(tmp_path.glob("*.mp4"))


@pytest.fixture
def wan_at_8fps():
    """Wan 2.1's tiny pipeline offered as a checkpoint whose native rate is 8 fps."""
    ckpt = dataclasses.replace(get_manager().catalog["wan2.1-i2v-480p"], fps=8)
    backends_module.register(
        BackendInfo("wan-at-8fps", "Wan at 8 fps", "", lambda: family_backend("wan")(ckpt))
    )
    yield "wan-at-8fps"
    backends_module.unregister("wan-at-8fps")


def test_a_take_below_the_plans_rate_is_interpolated_to_the_plans_rate_and_duration(
    photo, tmp_path, wan_at_8fps
):
    settings = Settings.from_env()
    # 27 frames at 24 fps last 1.125 s: 9 frames (4k+1) at the model's 8 fps.
    prepared = prepare_job(_job(photo, wan_at_8fps, "wan", 27, fps=24), settings)
    clips = list(run_job(prepared, tmp_path, settings))[-1].clips
    assert len(clips) == 4
    for clip in clips:
        info = probe_mp4(clip.path)
        assert (info["frames"], info["fps"]) == (27, 24)  # the plan's rate and duration
        assert clip.plan["params"]["rendered"]["frames"] == 9  # what the model made
        assert clip.manifest_data["rendered"] == {"fps": 8, "frames": 9}
        interpolated = clip.manifest_data["interpolated"]
        assert (interpolated["from_fps"], interpolated["to_fps"]) == (8, 24)
        assert interpolated["frames_added"] == 18


def test_a_plan_at_the_models_rate_is_not_interpolated(photo, tmp_path, wan_at_8fps):
    settings = Settings.from_env()
    prepared = prepare_job(_job(photo, wan_at_8fps, "wan", 9, fps=8), settings)
    clip = list(run_job(prepared, tmp_path, settings))[-1].clips[0]
    info = probe_mp4(clip.path)
    assert (info["frames"], info["fps"]) == (9, 8)
    assert clip.manifest_data["rendered"] == {"fps": 8, "frames": 9}
    assert clip.manifest_data["interpolated"] is None


def _plan(frames: int, fps: int, params: dict) -> VariantPlan:
    return VariantPlan(index=0, seed=5, width=96, height=64, frames=frames, fps=fps,
                       prompt="a photo of a product", negative_prompt="blurry",
                       params={"device": "cpu", "steps": 2, **params})  # fmt: skip


def test_a_plan_below_the_models_rate_keeps_the_models_frames_nearest_its_times_unblended(photo):
    ckpt = get_manager().catalog["ltx-video"]  # 24 fps, 8k+1 frames
    backend = family_backend("ltx")(ckpt)
    image = np.asarray(Image.open(photo).convert("RGB"))
    params = {"model_path": str(tiny_folder("ltx"))}
    # Half a second at 12 fps: 9 model frames at 24 fps, every other one kept.
    [(_, slow)] = backend.render_many(image, [_plan(5, 12, params)], RenderContext())
    [(_, full)] = backend.render_many(image, [_plan(9, 24, params)], RenderContext())
    assert slow.facts["fps"] == full.facts["fps"] == 24
    assert slow.facts["frames"] == full.facts["frames"] == 9
    kept, every = list(slow.frames), list(full.frames)
    assert len(kept) == 5
    for got, want in zip(kept, every[::2], strict=True):
        assert np.array_equal(got, want)  # the model's own frames, not cross-fades


@pytest.mark.parametrize(
    ("checkpoint", "frames", "fps", "expected"),
    [
        ("wan2.1-i2v-480p", 48, 24, 33),  # 2 s at 16 fps: 32 frames, nearest 4k+1
        ("ltx-video", 16, 8, 49),  # 2 s at 24 fps: 48 frames, nearest 8k+1
        ("ltx-video", 24, 24, 25),  # the model's own rate: the nearest valid count
        ("svd-xt", 48, 24, 14),  # 2 s at 7 fps
        ("svd-xt", 240, 24, 25),  # 10 s: longer than SVD renders, its longest take
        ("wan2.1-i2v-480p", 2, 24, 5),  # under one model frame: still two or more frames
    ],
)  # fmt: skip
def test_a_model_renders_the_plans_duration_at_its_own_rate(checkpoint, frames, fps, expected):
    ckpt = get_manager().catalog[checkpoint]
    backend = family_backend(ckpt.family)(ckpt)
    assert backend.shot(None, _plan(frames, fps, {})).frames == expected  # no model needed


def _numbered(count: int) -> np.ndarray:
    """count frames 4x6 whose grey level is 8x their index (floats 0..1, as a model returns)."""
    return np.stack([np.full((4, 6, 3), 8 * i / 255, np.float32) for i in range(count)])


@pytest.mark.parametrize(
    ("count", "model_fps", "frames", "fps", "kept"),
    [
        (9, 8, 27, 24, list(range(9))),  # below the plan's rate: all kept, the clip interpolates
        (29, 24, 27, 24, list(range(27))),  # 4k+1 rounded up past 27 frames: the last two cut
        (29, 24, 9, 8, list(range(0, 27, 3))),  # above it: the frame at each of the plan's times
        (17, 16, 9, 8, list(range(0, 17, 2))),
        (25, 24, 10, 12, list(range(0, 20, 2))),  # 8k+1 rounded down: the take's own end
    ],
)  # fmt: skip
def test_frames_are_fitted_to_the_plan_without_blending(count, model_fps, frames, fps, kept):
    plan = dataclasses.replace(_plan(frames, fps, {}), width=6, height=4)
    out = fit_frames(_numbered(count), plan, model_fps)
    assert [int(f[0, 0, 0]) // 8 for f in out] == kept
    assert all(f.shape == (4, 6, 3) and f.dtype == np.uint8 for f in out)
