"""Clips are H.264/yuv420p MP4s with faststart, written atomically; manifests are atomic JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from studio.encode import probe_mp4, write_json, write_mp4


def gradient_frames(n: int, w: int = 96, h: int = 64):
    for t in range(n):
        frame = np.zeros((h, w, 3), np.uint8)
        frame[..., 0] = np.linspace(0, 255, w, dtype=np.uint8)[None, :]
        frame[..., 1] = (t * 20) % 256
        yield frame


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir())


def test_mp4_has_expected_frames_size_and_browser_friendly_codec(tmp_path):
    info = write_mp4(gradient_frames(12), tmp_path / "clip.mp4", fps=24)
    assert info["frames"] == 12 and (info["width"], info["height"]) == (96, 64)
    probe = probe_mp4(tmp_path / "clip.mp4")
    assert probe["frames"] == 12 and (probe["width"], probe["height"]) == (96, 64)
    assert probe["codec"].startswith("h264")
    assert probe["pix_fmt"].startswith("yuv420p")
    assert leftovers(tmp_path) == ["clip.mp4"]


def test_mp4_is_faststart_and_yuv420p(tmp_path):
    write_mp4(gradient_frames(6), tmp_path / "clip.mp4", fps=24)
    data = (tmp_path / "clip.mp4").read_bytes()
    # +faststart moves the index (moov) before the media data so browsers start at once.
    assert 0 < data.find(b"moov") < data.find(b"mdat")
    # The avcC box of a yuv420p High-profile stream; ffmpeg also writes the pix fmt in the log,
    # but the container's sample entry is what browsers read.
    assert b"avc1" in data


def test_failure_mid_stream_leaves_nothing_behind(tmp_path):
    def broken():
        yield from gradient_frames(3)
        raise RuntimeError("renderer crashed")

    with pytest.raises(RuntimeError):
        write_mp4(broken(), tmp_path / "clip.mp4", fps=24)
    assert leftovers(tmp_path) == []


def test_odd_frame_size_is_refused_before_writing(tmp_path):
    frames = [np.zeros((63, 95, 3), np.uint8)]
    with pytest.raises(ValueError, match="even"):
        write_mp4(frames, tmp_path / "clip.mp4", fps=24)
    assert leftovers(tmp_path) == []


def test_existing_clip_is_replaced_only_when_the_new_one_is_complete(tmp_path):
    target = tmp_path / "clip.mp4"
    write_mp4(gradient_frames(4), target, fps=24)
    before = target.read_bytes()

    def broken():
        yield from gradient_frames(2)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_mp4(broken(), target, fps=24)
    assert target.read_bytes() == before


def test_json_manifest_is_written_atomically(tmp_path):
    path = write_json({"seed": 7, "name": "é"}, tmp_path / "m.json")
    assert json.loads(path.read_text(encoding="utf-8")) == {"seed": 7, "name": "é"}
    with pytest.raises(TypeError):
        write_json({"bad": object()}, tmp_path / "m.json")
    assert json.loads(path.read_text(encoding="utf-8"))["seed"] == 7
    assert leftovers(tmp_path) == ["m.json"]
