"""A model's sound track -> AAC in a finished, staged MP4, swapped in atomically and checked.

Only some checkpoints make sound (LTX-2 renders video and audio together). The video is
encoded first, as for every model (studio.encode.stage_mp4); the sound is then muxed into
that staged file with ffmpeg from imageio-ffmpeg: the video stream is copied, the sound
encoded to AAC, the result written beside it under a hidden name, checked, and renamed over
the staged file. The clip's final name still only ever holds a complete file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import subprocess
import wave
from dataclasses import dataclass
from typing import Any

import numpy as np

from studio.encode import Staged, fsync_path, temp_beside, write_failure

log = logging.getLogger(__name__)

AAC_BITRATE = "192k"


@dataclass(frozen=True)
class Audio:
    """A sound track: float samples in -1..1, shaped (channels, samples), at rate samples a second."""

    samples: np.ndarray
    rate: int

    @property
    def channels(self) -> int:
        return int(self.samples.shape[0])

    @property
    def seconds(self) -> float:
        return self.samples.shape[1] / self.rate

    @classmethod
    def from_model(cls, samples: Any, rate: int) -> Audio:
        """A model's waveform (a torch tensor or array, (channels, n) or (n,)) as an Audio."""
        if hasattr(samples, "detach"):  # torch: bf16 has no numpy dtype
            samples = samples.detach().float().cpu().numpy()
        data = np.asarray(samples, dtype=np.float32)
        if data.ndim == 1:
            data = data[None]
        if data.ndim != 2 or data.shape[0] > 8:
            raise ValueError(f"expected (channels, samples) audio, got shape {data.shape}")
        return cls(np.ascontiguousarray(data), int(rate))

    def fitted(self, seconds: float) -> Audio:
        """The track cut or padded with silence to last exactly as long as the video.

        The video's frames may have been resampled to the plan's length; stretching the sound
        instead would shift its pitch, so it keeps its speed and is cut or padded at the end.
        """
        n = max(1, round(seconds * self.rate))
        have = self.samples.shape[1]
        if have >= n:
            return Audio(self.samples[:, :n], self.rate)
        pad = np.zeros((self.channels, n - have), np.float32)
        return Audio(np.concatenate([self.samples, pad], axis=1), self.rate)


def write_wav(audio: Audio, path: str | os.PathLike) -> None:
    """16-bit PCM WAV of a track (what ffmpeg reads without guessing a raw format)."""
    pcm = (np.clip(audio.samples, -1.0, 1.0) * 32767.0).round().astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(audio.channels)
        out.setsampwidth(2)
        out.setframerate(audio.rate)
        out.writeframes(np.ascontiguousarray(pcm.T).tobytes())


_AUDIO_STREAM = re.compile(
    r"Stream #\d+:\d+.*?: Audio: (\w+).*?, (\d+) Hz, ([\w.() ]+?)(?:,|$)", re.M
)
_DURATION = re.compile(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)")


def probe_audio(path: str | os.PathLike) -> dict[str, Any] | None:
    """The first audio stream of a media file (codec, rate, channel layout, container
    duration), read from ffmpeg's description of it; None when it has no sound."""
    import imageio_ffmpeg

    run = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    text = run.stderr  # ffmpeg -i with no output describes the input on stderr, exits 1
    found = _AUDIO_STREAM.search(text)
    if not found:
        return None
    info: dict[str, Any] = {
        "codec": found.group(1),
        "rate": int(found.group(2)),
        "layout": found.group(3).strip(),
    }
    duration = _DURATION.search(text)
    if duration:
        h, m, s = duration.groups()
        info["seconds"] = round(int(h) * 3600 + int(m) * 60 + float(s), 3)
    return info


def mux_audio(video: Staged, audio: Audio, *, bitrate: str = AAC_BITRATE) -> Staged:
    """Put audio into a staged MP4 as AAC: the video stream is copied, not re-encoded.

    The muxed file is written beside the staged one under a hidden name, checked (it holds an
    AAC stream), flushed and renamed over the staged file; on any failure the staged video
    is discarded too, so a caller has nothing left to clean up.
    """
    import imageio_ffmpeg

    if video.info.get("frames") and video.info.get("fps"):  # as long as the encoded frames
        audio = audio.fitted(video.info["frames"] / video.info["fps"])
    wav = muxed = None
    try:
        wav = temp_beside(video.path, ".wav")  # beside the clip, dot-named while half-written
        muxed = temp_beside(video.path, ".mp4")
        write_wav(audio, wav)
        cmd = [
            imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
            "-i", str(video.tmp), "-i", str(wav),
            "-map", "0:v:0", "-map", "1:a:0",
            "-c:v", "copy", "-c:a", "aac", "-b:a", bitrate,
            "-movflags", "+faststart", "-f", "mp4", str(muxed),
        ]  # fmt: skip
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if run.returncode != 0:
            raise OSError(f"ffmpeg could not add the sound track: {run.stderr.strip()[-300:]}")
        found = probe_audio(muxed)
        if found is None or found["codec"] != "aac":
            raise OSError(f"the muxed file has no AAC sound track ({found})")
        fsync_path(muxed)
        os.replace(muxed, video.tmp)
        muxed = None
    except (OSError, subprocess.SubprocessError) as exc:
        video.discard()
        raise write_failure(video.path, exc, "video") from exc
    except BaseException:
        video.discard()
        raise
    finally:
        for leftover in (wav, muxed):
            if leftover is not None:
                with contextlib.suppress(FileNotFoundError):
                    leftover.unlink()
    sound = {
        "codec": "aac",
        "rate": audio.rate,
        "channels": audio.channels,
        "seconds": round(audio.seconds, 3),
    }
    return Staged(video.tmp, video.path, {**video.info, "audio": sound})
