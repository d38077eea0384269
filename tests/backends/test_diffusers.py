"""Model backends end to end: tiny random-weight pipelines through the real variant generator."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio import backends as backends_module
from studio.audio import probe_audio
from studio.backends.base import RenderContext
from studio.clips import run_job
from studio.encode import probe_mp4
from studio.errors import BackendError, Cancelled
from studio.jobs import Job, prepare_job
from studio.models import ModelManager, get_manager, set_manager
from studio.settings import Settings
from tests.tiny_pipelines import tiny_catalog, tiny_folder

os.environ["HF_HUB_OFFLINE"] = "1"  # nothing in these tests may reach the hub

# (backend id, tiny pipeline, frames, size): SVD is the slowest tiny model, so it makes fewer
# frames at its smallest size; LTX is asked for 8 frames so the model's 9 (8k+1) are
# resampled back to 8; CogVideoX renders at its fixed 32x32 and is resized up; CogVideoX 1.5
# makes 17 frames (16k+1) and HunyuanVideo 1.5 a 16x12 video, both resampled to the plan's.
CASES = [
    ("svd-xt", "svd", 4, (64, 64)),
    ("ltx-video", "ltx", 8, (96, 64)),
    ("cogvideox-5b-i2v", "cogvideox", 9, (96, 64)),
    ("wan2.1-i2v-480p", "wan", 9, (96, 64)),
    ("wan2.2-ti2v-5b", "wan2.2-ti2v", 9, (96, 64)),
    ("skyreels-v2-i2v-1.3b", "skyreels", 9, (96, 64)),
    ("ltx-2", "ltx2", 9, (96, 64)),
    ("wan2.2-i2v-a14b", "wan2.2-a14b", 9, (96, 64)),
    ("hunyuanvideo-1.5-i2v-480p", "hunyuan15", 9, (96, 64)),
    ("cogvideox1.5-5b-i2v", "cogvideox1.5", 9, (96, 64)),
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


def _job(photo: Path, backend: str, family: str, frames: int, size=(96, 64), **params) -> Job:
    return Job(
        image=str(photo),
        preset="product/slow-push-in",
        backend=backend,
        seed=7,
        size=size,
        frames=frames,
        fps=8,
        params={"model_path": str(tiny_folder(family)), "steps": 2, **params},
    )


@pytest.mark.parametrize(("backend", "family", "frames", "size"), CASES, ids=[c[0] for c in CASES])
def test_each_family_renders_four_valid_clips(photo, tmp_path, backend, family, frames, size):
    settings = Settings.from_env()
    prepared = prepare_job(_job(photo, backend, family, frames, size), settings)
    updates = list(run_job(prepared, tmp_path, settings))
    clips = updates[-1].clips
    assert updates[-1].done and len(clips) == 4
    assert sum(1 for u in updates if u.new_clip is not None) == 4  # streamed one by one
    for clip in clips:
        info = probe_mp4(clip.path)
        assert (info["frames"], info["width"], info["height"]) == (frames, *size)
        rendered = clip.plan["params"]["rendered"]
        assert rendered["checkpoint"] == backend and rendered["steps"] == 2
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
        assert abs(sound["seconds"] - 9 / 8) < 0.1  # the clip's 9 frames at 8 fps
        assert probe_mp4(clip.path)["frames"] == 9  # the video stream is still whole
        recorded = clip.manifest_data["video"]["audio"]
        assert recorded == {"codec": "aac", "rate": 16000, "channels": 2, "seconds": 1.125}
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
