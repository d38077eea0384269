"""The studio's x264 options reach the stream: its thread share and its own parameters."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from studio.clips import run_job
from studio.cpu import threads_each
from studio.encode import probe_mp4, stage_mp4
from studio.jobs import Job, prepare_job
from studio.settings import Settings


def frames(n: int = 6, w: int = 64, h: int = 64):
    for t in range(n):
        frame = np.zeros((h, w, 3), np.uint8)
        frame[..., 0] = np.linspace(0, 255, w, dtype=np.uint8)[None, :]
        frame[:, (t * 7) % w, 1] = 255
        yield frame


def x264_options(path: Path) -> dict[str, str]:
    """The encoder settings x264 writes into the stream as a text SEI, as key -> value."""
    data = path.read_bytes()
    assert data.count(b"x264 - core") == 1, "no x264 options in the stream"
    start = data.index(b"options:", data.index(b"x264 - core")) + len(b"options:")
    text = data[start : data.index(b"\0", start)].decode("ascii")
    return dict(item.split("=", 1) for item in text.split())


def encode(tmp_path: Path, **kwargs) -> Path:
    staged = stage_mp4(frames(), tmp_path / "clip.mp4", fps=12, **kwargs)
    return staged.commit()


@pytest.mark.parametrize("threads", [1, 3])
def test_threads_and_params_given_to_stage_mp4_reach_x264(tmp_path, threads):
    options = x264_options(encode(tmp_path, threads=threads, params="subme=1"))
    assert options["threads"] == str(threads)
    assert options["subme"] == "1"


def test_without_threads_or_params_x264_keeps_its_presets_choices(tmp_path):
    options = x264_options(encode(tmp_path))
    assert options["subme"] == "2"  # veryfast's own sub-pixel refinement
    assert options["me"] == "hex" and options["ref"] == "1"  # the rest of veryfast too


def test_the_studios_default_x264_params_are_subme_1():
    assert Settings().x264_params == "subme=1"


def test_variants_rendered_side_by_side_encode_with_their_share_of_the_cores(
    samples, settings, tmp_path
):
    settings = replace(settings, workers=2, score=False)
    job = Job(image=str(samples["product"]), preset="product/glint", seed=1, variants=2,
              size=(64, 64), frames=6, fps=12)  # fmt: skip
    prepared = prepare_job(job, settings)
    assert prepared.backend.parallel_variants  # the engine: variants render in threads
    final = list(run_job(prepared, tmp_path / "job", settings))[-1]
    assert final.done and len(final.clips) == 2
    for clip in final.clips:
        assert probe_mp4(clip.path)["frames"] == 6
        options = x264_options(clip.path)
        assert options["subme"] == "1"
        assert options["threads"] == str(threads_each(2))
