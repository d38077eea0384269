"""A model's sound track in the clip: fitted to the video, muxed as AAC, nothing left on failure."""

from __future__ import annotations

import numpy as np
import pytest

from studio.audio import Audio, mux_audio, probe_audio
from studio.encode import probe_mp4, stage_mp4
from studio.errors import EncodeError


def _tone(seconds: float, rate: int = 24000) -> Audio:
    t = np.arange(round(seconds * rate)) / rate
    wave = 0.5 * np.sin(2 * np.pi * 440 * t).astype(np.float32)
    return Audio(np.stack([wave, wave]), rate)


def _frames(n: int = 12):
    for i in range(n):
        yield np.full((32, 48, 3), 20 * i, np.uint8)


def test_sound_is_cut_or_padded_to_the_videos_length_not_stretched():
    tone = _tone(0.5)
    assert tone.fitted(0.25).samples.shape == (2, 6000)
    longer = tone.fitted(1.0)
    assert longer.samples.shape == (2, 24000)
    assert np.array_equal(longer.samples[:, :12000], tone.samples)  # same speed, same pitch
    assert not longer.samples[:, 12000:].any()  # silence after


def test_a_model_waveform_of_any_float_type_becomes_a_track():
    torch = pytest.importorskip("torch")
    track = Audio.from_model(torch.zeros(2, 100, dtype=torch.bfloat16), 16000)
    assert track.samples.dtype == np.float32 and (track.channels, track.rate) == (2, 16000)
    assert Audio.from_model(np.zeros(50), 8000).channels == 1


def test_the_muxed_clip_keeps_every_frame_and_carries_aac_as_long_as_the_video(tmp_path):
    video = stage_mp4(_frames(12), tmp_path / "clip.mp4", fps=8)
    staged = mux_audio(video, _tone(0.4))  # shorter than the video's 1.5 s: padded
    assert staged.tmp == video.tmp and not staged.path.exists()  # still staged, not published
    staged.commit()
    sound = probe_audio(tmp_path / "clip.mp4")
    assert sound["codec"] == "aac" and sound["rate"] == 24000 and sound["layout"] == "stereo"
    assert abs(sound["seconds"] - 1.5) < 0.06
    assert probe_mp4(tmp_path / "clip.mp4")["frames"] == 12
    assert staged.info["audio"] == {"codec": "aac", "rate": 24000, "channels": 2, "seconds": 1.5}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]  # no WAV, no temp MP4


def test_a_clip_that_cannot_take_the_sound_is_refused_and_nothing_is_left(tmp_path):
    video = stage_mp4(_frames(4), tmp_path / "clip.mp4", fps=8)
    video.tmp.write_bytes(b"not an mp4")  # the staged video was damaged
    with pytest.raises(EncodeError, match="could not be written"):
        mux_audio(video, _tone(0.5))
    assert list(tmp_path.iterdir()) == []


def test_a_file_without_sound_has_no_audio_stream(tmp_path):
    video = stage_mp4(_frames(4), tmp_path / "clip.mp4", fps=8)
    video.commit()
    assert probe_audio(tmp_path / "clip.mp4") is None
