"""Platform exports play back at the size, rate and length asked, WebM is VP9, a GIF fits its cap
and loops, an enlargement is reported, a crop is applied, and a failure leaves no file."""

from __future__ import annotations

import os
import stat
import subprocess
from dataclasses import replace
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image, ImageSequence

from studio import export
from studio.encode import write_mp4
from studio.errors import EncodeError, PresetError
from studio.export import Crop, centre_crop, export_clip, export_path, load_targets
from studio.platforms import DITHERS

TARGETS = load_targets()


def small(target_id: str, width: int, height: int, **changes):
    """A platform target at a test-sized frame (the size is not what these tests are about)."""
    return replace(TARGETS[target_id], width=width, height=height, **changes)


def moving(n: int, w: int, h: int, seed: int = 0):
    """A textured picture sliding sideways, as a camera pan makes."""
    rng = np.random.default_rng(seed)
    tex = rng.integers(0, 256, (h, w + 4 * n, 3), dtype=np.uint8)
    for t in range(n):
        yield np.ascontiguousarray(tex[:, 4 * t : 4 * t + w])


def decode(path: Path) -> tuple[dict, np.ndarray]:
    """Every frame as a player gets it, and what the stream says of itself."""
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    w, h = meta["size"]
    frames = np.stack([np.frombuffer(b, np.uint8).reshape(h, w, 3) for b in reader])
    return meta, frames


def stream_line(path: Path) -> str:
    out = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)],
                         capture_output=True, text=True).stderr  # fmt: skip
    return next(line for line in out.splitlines() if "Video:" in line)


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# The presets ------------------------------------------------------------------------------


def test_platform_targets_have_their_frames_rates_bitrates_and_a_gif_cap():
    sizes = {t.id: (t.width, t.height) for t in TARGETS.values()}
    assert sizes == {"vertical": (1080, 1920), "portrait": (1080, 1350),
                     "square": (1080, 1080), "landscape": (1920, 1080)}  # fmt: skip
    for t in TARGETS.values():
        assert t.video.bitrate_kbps <= t.video.maxrate_kbps <= t.video.bufsize_kbits
        assert 1 <= t.gif.cap_mb <= 16 and t.gif.dither in DITHERS
    vertical = TARGETS["vertical"]
    assert vertical.frame_rate(24) == 30 and vertical.frame_rate(30) == 30
    assert TARGETS["landscape"].frame_rate(24) == 24  # YouTube plays film rates as they are


def test_the_motion_preset_library_does_not_read_the_export_targets_as_a_family():
    from studio.presets import load_library

    assert "exports" not in load_library().families()


@pytest.mark.parametrize(
    "change, field",
    [
        ("size: [1081, 1920]", "size"),
        ("size: [1080, 1080]", "size"),  # not 9:16
        ("aspect: '3:2'", "aspect"),
        ("video: {bitrate_kbps: 9000, maxrate_kbps: 4000, bufsize_kbits: 8000}", "maxrate_kbps"),
        ("gif: {dither: pretty}", "dither"),
    ],
)
def test_a_wrong_target_file_names_the_file_and_the_field(tmp_path, change, field):
    key = change.split(":")[0]
    lines = [
        "targets:",
        "  - id: vertical",
        "    title: Vertical",
        "    aspect: '9:16'",
        "    size: [1080, 1920]",
        "    fps: 30",
        "    video: {bitrate_kbps: 8000, maxrate_kbps: 12000, bufsize_kbits: 18000}",
    ]
    lines = [ln for ln in lines if not ln.strip().startswith(f"{key}:")] + [f"    {change}"]
    path = tmp_path / "exports.yaml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(PresetError) as info:
        load_targets(path)
    assert str(path) in str(info.value) and f"'{field}'" in str(info.value), info.value


# Each format plays back as asked ---------------------------------------------------------


def test_mp4_export_plays_at_the_target_size_rate_and_length(tmp_path):
    target = small("vertical", 144, 256)
    result = export_clip(moving(48, 180, 320), "mp4", target, tmp_path / "a.mp4", fps=24)
    meta, frames = decode(tmp_path / "a.mp4")
    # 2 s at 24 fps become 2 s at the platform's 30 fps.
    assert frames.shape == (60, 256, 144, 3) and meta["fps"] == 30
    assert (result.width, result.height, result.fps, result.frames) == (144, 256, 30, 60)
    assert (
        result.duration == pytest.approx(2.0)
        and result.bytes == (tmp_path / "a.mp4").stat().st_size
    )
    assert result.codec == "h264" and result.pix_fmt == "yuv420p"
    line = stream_line(tmp_path / "a.mp4")
    assert "yuv420p(tv, bt709," in line and "unknown" not in line, line
    data = (tmp_path / "a.mp4").read_bytes()
    assert 0 < data.find(b"moov") < data.find(b"mdat")  # +faststart: plays while downloading
    assert files(tmp_path) == ["a.mp4"]


def test_webm_export_is_vp9_yuv420p_without_alpha_and_plays(tmp_path):
    target = small("square", 128, 128)
    result = export_clip(moving(30, 160, 160), "webm", target, tmp_path / "a.webm", fps=30)
    meta, frames = decode(tmp_path / "a.webm")
    assert frames.shape == (30, 128, 128, 3) and meta["fps"] == 30
    assert result.codec == "vp9" and result.pix_fmt == "yuv420p" and result.frames == 30
    line = stream_line(tmp_path / "a.webm")
    assert "Video: vp9" in line and "yuv420p(tv, bt709" in line and "yuva" not in line, line
    assert b"alpha_mode" not in (tmp_path / "a.webm").read_bytes()


def test_gif_export_loops_forever_at_half_the_rate_of_a_30_fps_clip(tmp_path):
    target = small("square", 120, 120)
    result = export_clip(moving(30, 120, 120), "gif", target, tmp_path / "a.gif", fps=30)
    # Every other frame (15 fps) keeps a pan smooth; the length stays 1 s.
    assert (result.width, result.height, result.fps, result.frames) == (120, 120, 15, 15)
    with Image.open(tmp_path / "a.gif") as gif:
        assert gif.info["loop"] == 0  # forever
        delays = [frame.info["duration"] for frame in ImageSequence.Iterator(gif)]
    # GIF delays are whole centiseconds: 6.7 cs is played as 7, 7, 6, ...
    assert sum(delays) == 1000 and set(delays) <= {60, 70}, delays
    _, frames = decode(tmp_path / "a.gif")
    assert frames.shape == (15, 120, 120, 3)
    assert result.bytes == (tmp_path / "a.gif").stat().st_size <= target.gif.cap_mb * 1e6


def test_a_clip_file_is_exported_like_frames(tmp_path):
    clip = tmp_path / "take-1.mp4"
    write_mp4(list(moving(24, 160, 96)), clip, fps=24)
    target = small("landscape", 128, 72)
    out = export_path(clip, "webm", target)
    assert out == tmp_path / "take-1.landscape.webm"
    result = export_clip(clip, "webm", target, out)
    meta, frames = decode(out)
    # 16:9 keeps a 24 fps clip at 24 (YouTube plays film rates as they are).
    assert frames.shape == (24, 72, 128, 3) and meta["fps"] == 24 and result.fps == 24
    assert result.crop == Crop(0, 3, 160, 90)  # centre crop of 160x96 to 16:9


def test_a_missing_clip_is_one_sentence(tmp_path):
    from studio.errors import ClipError

    with pytest.raises(ClipError, match="cannot be read"):
        export_clip(tmp_path / "nope.mp4", "mp4", TARGETS["square"], tmp_path / "out.mp4")
    assert files(tmp_path) == []


# The GIF size cap -------------------------------------------------------------------------


def test_gif_of_a_busy_1080_square_clip_fits_a_2_mb_cap_by_shrinking(tmp_path):
    frames = np.stack(list(moving(72, 1080, 1080, seed=1)))  # 3 s of texture at 24 fps
    target = TARGETS["square"]
    result = export_clip(frames, "gif", target, tmp_path / "busy.gif", fps=24, gif_cap_mb=2)
    size = (tmp_path / "busy.gif").stat().st_size
    assert size == result.bytes <= 2_000_000
    assert size > 1_000_000, "the cap should be used, not undershot by a wide margin"
    assert result.width < 1080 and result.height == result.width  # still square
    assert result.fps in (24, 12)  # the clip's rate, or every other frame
    assert result.frames == round(3 * result.fps) and result.duration == pytest.approx(3, abs=0.05)
    with Image.open(tmp_path / "busy.gif") as gif:
        assert gif.info["loop"] == 0 and gif.n_frames == result.frames
        assert gif.size == (result.width, result.height)
    assert 2 <= result.encodes <= 5
    assert files(tmp_path) == ["busy.gif"]  # no palette, trial or spool left behind


def test_gif_that_cannot_fit_its_cap_is_one_sentence_and_leaves_nothing(tmp_path):
    target = small("square", 320, 320)
    with pytest.raises(EncodeError) as info:
        export_clip(moving(24, 320, 320), "gif", target, tmp_path / "a.gif", fps=24,
                    gif_cap_mb=0.01)  # fmt: skip
    assert "does not fit in a 0.01 MB GIF" in str(info.value)
    assert "\n" not in str(info.value) and "ffmpeg" not in str(info.value)
    assert files(tmp_path) == []


def test_streamed_frames_are_spooled_for_the_gif_passes_and_the_spool_removed(tmp_path):
    target = small("square", 96, 96)
    gen = moving(12, 96, 96)  # a one-shot generator, as a renderer yields frames
    result = export_clip(gen, "gif", target, tmp_path / "a.gif", fps=12)
    assert result.frames == 12 and result.fps == 12  # slower than any GIF rate: kept
    assert files(tmp_path) == ["a.gif"]


# Framing ----------------------------------------------------------------------------------


def quadrants(w: int, h: int, n: int = 6) -> list[np.ndarray]:
    """Red top-left, green top-right, blue bottom-left, white bottom-right."""
    f = np.zeros((h, w, 3), np.uint8)
    f[: h // 2, : w // 2] = (255, 0, 0)
    f[: h // 2, w // 2 :] = (0, 255, 0)
    f[h // 2 :, : w // 2] = (0, 0, 255)
    f[h // 2 :, w // 2 :] = (255, 255, 255)
    return [f] * n


def test_a_crop_rectangle_becomes_the_whole_frame(tmp_path):
    target = small("square", 64, 64)
    crop = Crop(0, 0, 100, 100)  # the red quadrant of a 200x200 picture
    result = export_clip(quadrants(200, 200), "mp4", target, tmp_path / "a.mp4", fps=24,
                         crop=crop)  # fmt: skip
    _, frames = decode(tmp_path / "a.mp4")
    mean = frames[:, 4:-4, 4:-4].reshape(-1, 3).mean(axis=0)
    assert mean[0] > 200 and mean[1] < 40 and mean[2] < 40, mean
    assert result.crop == crop and not result.upscaled


def test_without_a_crop_the_middle_of_a_wide_picture_is_kept(tmp_path):
    frames = quadrants(240, 80)
    frames = [f.copy() for f in frames]
    for f in frames:
        f[:, :80] = (255, 0, 255)  # a left third that a centred square leaves out
        f[:, 160:] = (255, 255, 0)  # and a right third
    target = small("square", 80, 80)
    result = export_clip(frames, "mp4", target, tmp_path / "a.mp4", fps=24)
    assert result.crop == Crop(80, 0, 80, 80) == centre_crop((240, 80), target)
    _, out = decode(tmp_path / "a.mp4")
    left, right = out[0, 20, 10], out[0, 20, 70]  # top row: red | green at the middle
    assert left[0] > 200 and left[2] < 60 and right[1] > 200 and right[0] < 60, (left, right)


def test_a_crop_that_is_not_the_target_shape_is_refused(tmp_path):
    with pytest.raises(ValueError, match="shape"):
        export_clip(quadrants(200, 200), "mp4", small("square", 64, 64), tmp_path / "a.mp4",
                    fps=24, crop=(0, 0, 100, 50))  # fmt: skip
    assert files(tmp_path) == []


def test_an_enlarged_picture_is_reported_in_one_sentence(tmp_path):
    target = small("square", 160, 160)
    up = export_clip(quadrants(100, 100), "mp4", target, tmp_path / "up.mp4", fps=24)
    assert up.upscaled and "enlarged from 100x100 to 160x160" in up.warning
    assert up.warning.count(". ") == 0 and up.warning.endswith(".")
    native = export_clip(quadrants(160, 160), "mp4", target, tmp_path / "native.mp4", fps=24)
    assert not native.upscaled and native.warning == ""
    gif = export_clip(quadrants(100, 100), "gif", target, tmp_path / "up.gif", fps=24)
    assert not gif.upscaled and gif.width == 100  # a GIF is never enlarged: it is capped


# Failures leave nothing -------------------------------------------------------------------


def test_an_unwritable_folder_is_one_sentence_and_leaves_nothing(tmp_path):
    blocker = tmp_path / "exports"
    blocker.write_text("a file where the folder should be")
    with pytest.raises(EncodeError) as info:
        export_clip(quadrants(64, 64), "webm", small("square", 64, 64),
                    blocker / "a.webm", fps=24)  # fmt: skip
    assert str(info.value) == (
        "The WebM export could not be written; the details are in the studio's log."
    )
    assert files(tmp_path) == ["exports"]


@pytest.fixture
def crashing_ffmpeg(tmp_path, monkeypatch):
    """An encoder that writes half a file to its output and dies of a segfault."""
    script = tmp_path / "bin" / "ffmpeg"
    script.parent.mkdir()
    script.write_text('#!/bin/sh\nfor last; do :; done\nhead -c 5000 /dev/urandom > "$last"\n'
                      "cat > /dev/null\nkill -SEGV $$\n")  # fmt: skip
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(export, "_ffmpeg_exe", lambda: str(script))
    out = tmp_path / "out"
    out.mkdir()
    return out


@pytest.mark.parametrize("fmt", export.FORMATS)
def test_an_encoder_crash_leaves_no_file_and_keeps_the_old_export(crashing_ffmpeg, fmt):
    out = crashing_ffmpeg
    old = out / f"a.{fmt}"
    old.write_bytes(b"the export from before")
    with pytest.raises(EncodeError, match="could not be written"):
        export_clip(moving(6, 64, 64), fmt, small("square", 64, 64), old, fps=24)
    assert files(out) == [f"a.{fmt}"] and old.read_bytes() == b"the export from before"


def test_a_renderer_failing_mid_stream_passes_through_and_leaves_nothing(tmp_path):
    def broken():
        yield from moving(3, 64, 64)
        raise RuntimeError("renderer crashed")

    with pytest.raises(RuntimeError, match="renderer crashed"):
        export_clip(broken(), "mp4", small("square", 64, 64), tmp_path / "a.mp4", fps=24)
    assert files(tmp_path) == []


def test_frames_of_different_sizes_are_refused(tmp_path):
    frames = [np.zeros((64, 64, 3), np.uint8), np.zeros((64, 66, 3), np.uint8)]
    with pytest.raises(ValueError, match="frame 1"):
        export_clip(frames, "mp4", small("square", 64, 64), tmp_path / "a.mp4", fps=24)
    assert files(tmp_path) == []


def test_exports_are_readable_like_any_file_the_user_makes(tmp_path):
    export_clip(quadrants(64, 64), "mp4", small("square", 64, 64), tmp_path / "a.mp4", fps=24)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / "a.mp4").stat().st_mode) == 0o666 & ~umask


@pytest.fixture
def tiny_disk(tmp_path):
    """A real 1 MB file system (tmpfs), so ffmpeg meets ENOSPC exactly as on a full disk."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("the disk-full tests need root to mount a small tmpfs")
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"could not mount a tmpfs: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.parametrize("fmt", export.FORMATS)
def test_an_export_that_does_not_fit_on_the_disk_says_so_and_leaves_nothing(tiny_disk, fmt):
    # Noise does not compress: 4 s of it is well over 1 MB in every format.
    rng = np.random.default_rng(0)
    frames = (rng.integers(0, 256, (256, 256, 3), dtype=np.uint8) for _ in range(96))
    with pytest.raises(EncodeError) as info:
        export_clip(frames, fmt, small("square", 256, 256), tiny_disk / f"a.{fmt}", fps=24,
                    gif_cap_mb=50)  # fmt: skip
    assert "disk that holds the outputs folder is full" in str(info.value), info.value
    assert files(tiny_disk) == []
