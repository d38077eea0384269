"""A full disk: the user is told so in one sentence, and no unplayable clip or lone manifest is kept."""

from __future__ import annotations

import contextlib
import os
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from studio.clips import run_job
from studio.encode import EncodeError, write_json, write_mp4
from studio.errors import StudioError
from studio.jobs import Job, prepare_job

FULL = "disk that holds the outputs folder is full"


@pytest.fixture
def tiny_disk(tmp_path):
    """A real 3 MB file system (tmpfs), so ffmpeg meets ENOSPC exactly as on a full disk."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("the disk-full tests need root to mount a small tmpfs")
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"could not mount a tmpfs: {done.stderr}")
        pytest.skip(f"could not mount a tmpfs: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _noise(n: int, side: int = 512) -> list[np.ndarray]:
    rng = np.random.default_rng(0)  # noise does not compress: a few frames fill 3 MB
    return [rng.integers(0, 256, (side, side, 3), dtype=np.uint8) for _ in range(n)]


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


def test_a_clip_that_does_not_fit_is_one_sentence_and_leaves_nothing(tiny_disk):
    with pytest.raises(EncodeError) as info:
        write_mp4(_noise(40), tiny_disk / "clip.mp4", fps=24)
    message = str(info.value)
    assert FULL in message and "MB free" in message, message
    assert "ffmpeg" not in message.lower() and str(tiny_disk) not in message
    assert _files(tiny_disk) == []  # no unplayable MP4 under its final name, no temp file


def test_a_manifest_that_does_not_fit_is_one_sentence_and_leaves_nothing(tiny_disk):
    filler = tiny_disk / "filler"
    with contextlib.suppress(OSError), open(filler, "wb") as fh:
        fh.write(b"\0" * (4 << 20))  # fill the disk to the last byte
    with pytest.raises(EncodeError) as info:
        write_json({"big": "x" * 100_000}, tiny_disk / "m.json")
    assert FULL in str(info.value)
    assert _files(tiny_disk) == ["filler"]


def test_a_job_on_a_full_disk_keeps_only_whole_clips_with_their_manifests(
    tiny_disk, settings, samples
):
    settings = replace(settings, outputs_dir=tiny_disk, score=False, crf=0, workers=2)
    job = Job(image=str(samples["scenic"]), preset="scenic/gentle-wind", seed=3, size=(640, 384),
              frames=48)  # fmt: skip
    prepared = prepare_job(job, settings)
    with pytest.raises(StudioError) as info:
        for _ in run_job(prepared, tiny_disk / "job", settings):
            pass
    assert FULL in str(info.value), str(info.value)
    names = _files(tiny_disk)
    assert not [n for n in names if n.startswith(".")], names  # no temp files
    clips = {Path(n).stem for n in names if n.endswith(".mp4")}
    manifests = {Path(n).stem for n in names if n.endswith(".json")}
    assert clips == manifests, names  # every clip that stayed has its manifest, and vice versa
