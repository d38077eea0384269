"""Read any video file (MP4, WebM, GIF, MOV...) into RGB frames with the ffmpeg that imageio-ffmpeg bundles."""

from __future__ import annotations

import logging
import os
from typing import NamedTuple

import numpy as np


class Video(NamedTuple):
    """Decoded frames plus what scoring needs to map pixels back to the file's own resolution."""

    frames: np.ndarray  # T x H x W x 3 uint8 RGB, possibly downscaled
    fps: float
    source_size: tuple[int, int]  # (width, height) as encoded in the file


class _SkipSizeWarning(logging.Filter):
    # Downscaling inside ffmpeg is deliberate here; imageio-ffmpeg warns about it on every read.
    def filter(self, record: logging.LogRecord) -> bool:
        return "different from the source frame size" not in record.getMessage()


logging.getLogger("imageio_ffmpeg").addFilter(_SkipSizeWarning())


def read_video(
    path: str | os.PathLike, max_frames: int | None = None, max_side: int | None = None
) -> Video:
    """Decode a video; ffmpeg does the downscale so big clips never travel the pipe at full size.

    Raises OSError or RuntimeError (from imageio-ffmpeg) when the file is missing or unreadable;
    callers turn that into a StudioError with a sentence for the user.
    """
    import imageio_ffmpeg  # a subprocess wrapper: only pay for the import when reading

    output_params: list[str] = []
    if max_side:
        # Fit inside max_side x max_side without ever upscaling; "area" matches cv2.INTER_AREA.
        box = f"'min({max_side},iw)':'min({max_side},ih)'"
        output_params += ["-vf", f"scale={box}:force_original_aspect_ratio=decrease:flags=area"]
    if max_frames:
        output_params += ["-frames:v", str(int(max_frames))]
    reader = imageio_ffmpeg.read_frames(str(path), output_params=output_params)
    try:
        meta = next(reader)
        width, height = meta["size"]
        frames = [np.frombuffer(raw, np.uint8).reshape(height, width, 3) for raw in reader]
    finally:
        reader.close()
    stack = np.stack(frames) if frames else np.zeros((0, height, width, 3), np.uint8)
    return Video(stack, float(meta.get("fps") or 0.0), tuple(meta["source_size"]))
