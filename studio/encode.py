"""Frames -> H.264 MP4 (yuv420p, +faststart) and JSON manifests, written atomically."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from studio.errors import StudioError


class EncodeError(StudioError):
    """The video could not be written (disk full, ffmpeg missing...)."""


def _temp_beside(path: Path, suffix: str) -> Path:
    # Same folder as the target so os.replace is an atomic rename; a leading dot keeps
    # half-written files out of listings and out of the studio's file routes.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".part{suffix}", dir=path.parent)
    os.close(fd)
    return Path(tmp)


def write_mp4(
    frames: Iterable[np.ndarray],
    path: str | os.PathLike,
    *,
    fps: float,
    crf: int = 18,
    preset: str = "veryfast",
) -> dict[str, Any]:
    """Encode RGB uint8 frames into an MP4 that plays in every browser; returns its facts.

    The frames are streamed to ffmpeg (from imageio-ffmpeg) as they are produced, so
    rendering and encoding overlap. Nothing appears at `path` unless encoding finished.
    """
    import imageio_ffmpeg

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_beside(path, ".mp4")
    writer = None
    count = 0
    size: tuple[int, int] | None = None
    try:
        for frame in frames:
            if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
                raise ValueError(f"frame {count} has shape {frame.shape} {frame.dtype}")
            h, w = frame.shape[:2]
            if writer is None:
                if w % 2 or h % 2:
                    raise ValueError(f"yuv420p needs even sizes, got {w}x{h}")
                size = (w, h)
                writer = imageio_ffmpeg.write_frames(
                    str(tmp),
                    size,
                    fps=fps,
                    codec="libx264",
                    pix_fmt_in="rgb24",
                    pix_fmt_out="yuv420p",
                    quality=None,
                    macro_block_size=1,
                    ffmpeg_log_level="error",
                    output_params=[
                        # Convert with the BT.709 matrix and say so in the stream, so
                        # browsers and players show the photo's colours, not a shifted tint.
                        "-vf", "scale=out_color_matrix=bt709:out_range=tv",
                        "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709",
                        "-crf", str(crf),
                        "-preset", preset,
                        "-movflags", "+faststart",
                        "-f", "mp4",
                    ],
                )  # fmt: skip
                writer.send(None)
            elif (w, h) != size:
                raise ValueError(f"frame {count} is {w}x{h}, expected {size[0]}x{size[1]}")
            writer.send(np.ascontiguousarray(frame))
            count += 1
        if writer is None:
            raise ValueError("no frames to encode")
        writer.close()
        writer = None
        os.replace(tmp, path)
    except OSError as exc:
        raise EncodeError(f"Could not write the video {path.name}: {exc.strerror or exc}.") from exc
    finally:
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.close()
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return {"path": str(path), "frames": count, "width": size[0], "height": size[1], "fps": fps}


def write_json(data: Any, path: str | os.PathLike) -> Path:
    """Write JSON atomically (temp file in the same folder, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_beside(path, ".json")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=False)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return path


def probe_mp4(path: str | os.PathLike) -> dict[str, Any]:
    """Count frames and read size/fps of a video with imageio-ffmpeg (decodes it fully)."""
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    count = sum(1 for _ in reader)
    w, h = meta["size"]
    return {
        "frames": count,
        "width": w,
        "height": h,
        "fps": meta.get("fps"),
        "codec": meta.get("codec"),
        "pix_fmt": meta.get("pix_fmt"),
    }
