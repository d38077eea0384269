"""Clips are H.264/yuv420p MP4s with faststart, written atomically; manifests are atomic JSON."""

from __future__ import annotations

import json
import subprocess

import cv2
import imageio_ffmpeg
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


def _stream_line(path) -> str:
    out = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)],
                         capture_output=True, text=True).stderr  # fmt: skip
    return next(line for line in out.splitlines() if "Video:" in line)


def test_clips_are_tagged_bt709_for_matrix_primaries_and_transfer(tmp_path):
    write_mp4(gradient_frames(4), tmp_path / "clip.mp4", fps=24)
    line = _stream_line(tmp_path / "clip.mp4")
    # ffmpeg prints "bt709" alone when matrix, primaries and transfer all say BT.709, and
    # "bt709/unknown/unknown" when only the matrix is tagged.
    assert "yuv420p(tv, bt709," in line and "unknown" not in line, line
    # Chroma is sited at the centre of each 2x2 block (H.264 chroma_sample_loc_type 1), as
    # the studio's conversion averages it.
    trace = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "trace", "-i",
         str(tmp_path / "clip.mp4"), "-c", "copy", "-bsf:v", "trace_headers", "-f", "null", "-"],
        capture_output=True, text=True,
    ).stderr  # fmt: skip
    sited = [ln for ln in trace.splitlines() if "chroma_sample_loc_type_top_field" in ln]
    assert sited and sited[0].rstrip().endswith("= 1"), sited


def test_written_files_are_readable_like_any_file_the_user_makes(tmp_path):
    import os
    import stat

    clip = tmp_path / "clip.mp4"
    write_mp4(gradient_frames(4), clip, fps=24)
    manifest = write_json({"seed": 1}, tmp_path / "m.json")
    umask = os.umask(0)
    os.umask(umask)
    for path in (clip, manifest):
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, oct(path.stat().st_mode)


def test_a_clip_ffmpeg_did_not_finish_never_gets_its_name(tmp_path, monkeypatch):
    import imageio_ffmpeg

    from studio.encode import EncodeError

    def cut_short(path, *a, **k):
        raise RuntimeError("moov atom not found")  # what ffmpeg says of a file with no trailer

    import studio.encode

    monkeypatch.setattr(studio.encode, "mp4_video_frames", lambda path: None)  # no index
    monkeypatch.setattr(imageio_ffmpeg, "count_frames_and_secs", cut_short)
    with pytest.raises(EncodeError, match="could not be written"):
        write_mp4(gradient_frames(4), tmp_path / "clip.mp4", fps=24)
    assert leftovers(tmp_path) == []


def test_the_frame_count_is_read_from_the_mp4_index_and_a_cut_short_copy_has_none(tmp_path):
    from studio.encode import mp4_video_frames

    path = tmp_path / "clip.mp4"
    write_mp4(gradient_frames(7), path, fps=24)
    assert mp4_video_frames(path) == 7
    data = path.read_bytes()
    for keep in (len(data) // 2, len(data) - 1, 64):  # cut in the media, at the end, in the index
        cut = tmp_path / f"cut-{keep}.mp4"
        cut.write_bytes(data[:keep])
        assert mp4_video_frames(cut) is None
    (tmp_path / "junk.mp4").write_bytes(b"\x00\x00\x00\x01junkjunk" + bytes(40))
    assert mp4_video_frames(tmp_path / "junk.mp4") is None


def test_colours_come_back_as_they_went_in(tmp_path):
    # The clip's frames are converted to BT.709 limited-range 4:2:0 in the studio (not by
    # ffmpeg): saturated primaries, greys and a skin tone decode within 3 levels.
    colours = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255], [0, 0, 0],
                        [128, 128, 128], [224, 172, 138], [30, 60, 200], [250, 200, 20],
                        [16, 120, 60]], np.uint8)  # fmt: skip
    frame = np.zeros((64, 160, 3), np.uint8)
    for i, c in enumerate(colours):
        frame[(i // 5) * 32 : (i // 5) * 32 + 32, (i % 5) * 32 : (i % 5) * 32 + 32] = c
    write_mp4([frame] * 4, tmp_path / "clip.mp4", fps=24)
    frames = imageio_ffmpeg.read_frames(str(tmp_path / "clip.mp4"))
    next(frames)
    back = np.frombuffer(next(frames), np.uint8).reshape(64, 160, 3)
    for i, c in enumerate(colours):
        y, x = (i // 5) * 32 + 16, (i % 5) * 32 + 16
        assert np.abs(back[y, x].astype(int) - c).max() <= 3, (c, back[y, x])


def test_the_studio_conversion_matches_ffmpegs_bt709(tmp_path):
    from studio.encode import yuv420_bt709

    rng = np.random.default_rng(3)
    h, w = 48, 64
    frame = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (0, 0), 1.5)
    ours = yuv420_bt709(frame)
    theirs = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-f", "rawvideo", "-pix_fmt",
         "rgb24", "-s", f"{w}x{h}", "-i", "-", "-vf",
         "scale=out_color_matrix=bt709:out_range=tv:flags=area+accurate_rnd", "-pix_fmt",
         "yuv420p", "-f", "rawvideo", "-"],
        input=frame.tobytes(), capture_output=True, check=True,
    ).stdout  # fmt: skip
    theirs = np.frombuffer(theirs, np.uint8)
    n = h * w
    assert ours.shape == theirs.shape == (n * 3 // 2,)
    assert np.abs(ours[:n].astype(int) - theirs[:n]).max() <= 1  # luma
    assert np.abs(ours[n:].astype(int) - theirs[n:]).max() <= 2  # chroma, 2x2 means
