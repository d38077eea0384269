"""Frames -> H.264 MP4 (yuv420p, +faststart, BT.709) and JSON/text files, written atomically.

Every file is written under a hidden temporary name beside its target, checked, flushed to the
disk, and only then renamed into place, so a final name always holds a complete file. Callers
that publish several files together (a clip and its manifest) stage each one and commit them
in order (see Staged).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from studio.errors import EncodeError

log = logging.getLogger(__name__)

# Files the studio writes are readable like any other file the user makes (mkstemp's
# 0600 would hide clips from the user's other programs and other accounts they share with).
_FILE_MODE = 0o666


def _umask() -> int:
    # Read without changing it: os.umask() sets it process-wide, which races with other threads.
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    return 0o022


_MODE = _FILE_MODE & ~_umask()


def temp_beside(path: Path, suffix: str) -> Path:
    # Same folder as the target so os.replace is an atomic rename; a leading dot keeps
    # half-written files out of listings and out of the studio's file routes.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".part{suffix}", dir=path.parent)
    os.close(fd)
    return Path(tmp)


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _megabytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n < 10e9 else f"{n / 1e9:.0f} GB"


def write_failure(path: Path, exc: BaseException | None, what: str) -> EncodeError:
    """One sentence for a file we could not write; the technical details go to the log."""
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        free = None
    text = str(exc or "")
    full = isinstance(exc, OSError) and exc.errno == errno.ENOSPC
    full = full or "No space left" in text or (free is not None and free < 16e6)
    log.error("Writing %s failed (free space: %s): %s", path, free, text or exc)
    if full:
        left = f" ({_megabytes(free)} free)" if free is not None else ""
        return EncodeError(
            f"The disk that holds the outputs folder is full{left}; free some space, or set "
            "STUDIO_OUTPUTS_DIR to a folder on a bigger disk, and try again."
        )
    return EncodeError(f"The {what} could not be written; the details are in the studio's log.")


@dataclass
class Staged:
    """A complete, checked file under a temporary name, waiting to be given its final name."""

    tmp: Path
    path: Path
    info: dict[str, Any] = field(default_factory=dict)

    def commit(self) -> Path:
        """Give the file its final name (atomic), readable by the user, and durable."""
        os.chmod(self.tmp, _MODE)
        os.replace(self.tmp, self.path)
        with contextlib.suppress(OSError):  # the folder entry itself, so a crash keeps the name
            fsync_path(self.path.parent)
        return self.path

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.tmp.unlink()


# RGB -> Y'CbCr with the BT.709 matrix, limited range (Y' 16-235, Cb and Cr 16-240): one row
# per output channel, the offsets in the last column (ITU-R BT.709-6, items 3.2 and 3.3).
_KR, _KB = 0.2126, 0.0722
_KG = 1.0 - _KR - _KB
_BT709_LIMITED = np.array(
    [
        [219 / 255 * _KR, 219 / 255 * _KG, 219 / 255 * _KB, 16.0],
        [
            224 / 255 * -_KR / (2 - 2 * _KB),
            224 / 255 * -_KG / (2 - 2 * _KB),
            224 / 255 * 0.5,
            128.0,
        ],
        [
            224 / 255 * 0.5,
            224 / 255 * -_KG / (2 - 2 * _KR),
            224 / 255 * -_KB / (2 - 2 * _KR),
            128.0,
        ],
    ],
    np.float32,
)


def yuv420_bt709(frame: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """RGB uint8 (H, W, 3), even sizes -> planar 4:2:0 (I420) bytes, BT.709 limited range.

    Each chroma sample is the mean of its 2x2 block (sited at the block's centre, as the
    stream is tagged). OpenCV does it in about 1 ms a 1024x576 frame, a third of what
    ffmpeg's own RGB conversion costs the encoder process.
    """
    h, w = frame.shape[:2]
    n, q = h * w, (h // 2) * (w // 2)
    if out is None:
        out = np.empty(n + 2 * q, np.uint8)
    ycc = cv2.transform(frame, _BT709_LIMITED)
    cv2.extractChannel(ycc, 0, dst=out[:n].reshape(h, w))
    half = cv2.resize(ycc, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    cv2.extractChannel(half, 1, dst=out[n : n + q].reshape(h // 2, w // 2))
    cv2.extractChannel(half, 2, dst=out[n + q :].reshape(h // 2, w // 2))
    return out


def stage_mp4(
    frames: Iterable[np.ndarray],
    path: str | os.PathLike,
    *,
    fps: float,
    crf: int = 18,
    preset: str = "veryfast",
    threads: int = 0,
    params: str = "",
) -> Staged:
    """Encode RGB uint8 frames into a hidden temp MP4 beside `path`, checked and flushed.

    threads: x264's threads (0: as many as suit the machine; studio.cpu gives a variant
    encoded beside others its share). params: x264's own options ("key=value:..."), if any.

    The frames are streamed to ffmpeg (from imageio-ffmpeg) as they are produced, so
    rendering and encoding overlap. The result is verified (the container opens and holds
    every frame) before it is handed back; nothing is left behind when anything fails.
    """
    import imageio_ffmpeg

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_beside(path, ".mp4")
    writer = None
    count = 0
    size: tuple[int, int] | None = None
    planes: np.ndarray | None = None  # one buffer, refilled for every frame
    ok = False
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
                    # Converted here (yuv420_bt709): ffmpeg only encodes.
                    pix_fmt_in="yuv420p",
                    pix_fmt_out="yuv420p",
                    quality=None,
                    macro_block_size=1,
                    ffmpeg_log_level="error",
                    input_params=["-color_range", "tv", "-colorspace", "bt709"],
                    output_params=[
                        # Tag matrix, primaries, transfer, range and chroma siting in the
                        # stream, so players show the photo's colours.
                        "-vf", "setparams=range=tv:colorspace=bt709:color_primaries=bt709:color_trc=bt709"
                               ":chroma_location=center",
                        "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709",
                        "-color_range", "tv",
                        "-crf", str(crf),
                        "-preset", preset,
                        "-threads", str(max(0, int(threads))),
                        *(["-x264-params", params] if params else []),
                        "-movflags", "+faststart",
                        "-f", "mp4",
                    ],
                )  # fmt: skip
                writer.send(None)
            elif (w, h) != size:
                raise ValueError(f"frame {count} is {w}x{h}, expected {size[0]}x{size[1]}")
            planes = yuv420_bt709(np.ascontiguousarray(frame), planes)
            writer.send(planes)
            count += 1
        if writer is None:
            raise ValueError("no frames to encode")
        try:
            writer.close()
        finally:
            writer = None
        _check_video(tmp, count)
        fsync_path(tmp)
        ok = True
    except (OSError, Incomplete) as exc:
        raise write_failure(path, exc, "video") from exc
    finally:
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.close()
        if not ok:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    info = {"path": str(path), "frames": count, "width": size[0], "height": size[1], "fps": fps}
    return Staged(tmp, path, info)


class Incomplete(Exception):
    """ffmpeg failed, or exited without writing a complete file (stage_with turns it into
    one sentence via write_failure, which also spots a full disk in its text)."""


_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl"}


def _boxes(data: bytes, start: int, end: int):
    """(type, payload start, payload end) of each ISO-BMFF box in data[start:end]."""
    pos = start
    while pos + 8 <= end:
        size = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        head = 8
        if size == 1:
            if pos + 16 > end:
                return
            size, head = int.from_bytes(data[pos + 8 : pos + 16], "big"), 16
        elif size == 0:
            size = end - pos
        if size < head or pos + size > end:
            return
        yield kind, pos + head, pos + size
        pos += size


def mp4_video_frames(path: str | os.PathLike) -> int | None:
    """The video track's sample count from a +faststart MP4's index (moov at the front), or
    None when the index is missing or unreadable: a file ffmpeg did not finish has none."""
    with open(path, "rb") as f:
        head = f.read(8 << 20)  # the index of a few thousand frames is well under this
        if not _whole(f):
            return None
    found: list[int] = []

    def walk(start: int, end: int, video: bool) -> None:
        for kind, a, b in _boxes(head, start, end):
            if kind == b"trak":
                hdlr = _find(head, a, b, (b"mdia", b"hdlr"))
                walk(a, b, hdlr is not None and head[hdlr + 8 : hdlr + 12] == b"vide")
            elif kind in _CONTAINERS:
                walk(a, b, video)
            elif kind == b"stsz" and video and b - a >= 12:
                found.append(int.from_bytes(head[a + 8 : a + 12], "big"))

    walk(0, len(head), False)
    return found[0] if len(found) == 1 else None


def _whole(f) -> bool:
    """Whether the file's top-level boxes end exactly at its end and hold the media (mdat):
    a copy cut short (a full disk while ffmpeg moves the index to the front) does not."""
    total = os.fstat(f.fileno()).st_size
    pos, kinds = 0, set()
    while pos + 8 <= total:
        f.seek(pos)
        h = f.read(16)
        size, kind = int.from_bytes(h[:4], "big"), h[4:8]
        if size == 1 and len(h) == 16:
            size = int.from_bytes(h[8:16], "big")
        elif size == 0:
            size = total - pos
        if size < 8:
            return False
        kinds.add(kind)
        pos += size
    return pos == total and b"mdat" in kinds and b"moov" in kinds


def _find(data: bytes, start: int, end: int, path: tuple[bytes, ...]) -> int | None:
    for kind, a, b in _boxes(data, start, end):
        if kind == path[0]:
            return a if len(path) == 1 else _find(data, a, b, path[1:])
    return None


def _check_video(path: Path, expected: int) -> None:
    """Refuse a file ffmpeg did not finish (a full disk fails at the trailer, silently).

    The MP4's own index is read (a millisecond); only when it cannot be read does ffmpeg
    count the packets (a process of about 0.1 s per clip).
    """
    frames = mp4_video_frames(path)
    if frames is None:
        import imageio_ffmpeg

        try:
            frames, _ = imageio_ffmpeg.count_frames_and_secs(str(path))  # reads packets only
        except RuntimeError as exc:  # the container cannot be opened (no trailer)
            raise Incomplete(str(exc).strip().splitlines()[-1:]) from exc
    if frames != expected:
        raise Incomplete(f"the encoded file holds {frames} of {expected} frames")


def write_mp4(
    frames: Iterable[np.ndarray],
    path: str | os.PathLike,
    *,
    fps: float,
    crf: int = 18,
    preset: str = "veryfast",
) -> dict[str, Any]:
    """Encode frames to `path`; nothing appears there unless the clip is complete."""
    staged = stage_mp4(frames, path, fps=fps, crf=crf, preset=preset)
    publish(staged, "video")
    return staged.info


def publish(staged: Staged, what: str) -> Path:
    """Commit one staged file on its own; a failed rename leaves nothing behind."""
    try:
        return staged.commit()
    except OSError as exc:
        staged.discard()
        raise write_failure(staged.path, exc, what) from exc


def stage_with(
    path: str | os.PathLike, write: Callable[[Path], dict[str, Any]], *, what: str = "video"
) -> Staged:
    """Let `write` fill a hidden temp file beside `path`, then flush it and hand it back staged.

    For writers other than stage_mp4 (an external encoder, several passes): `write` gets the
    temp path, checks what it wrote (raising Incomplete when it is not whole) and returns the
    file's info. OSError and Incomplete become one sentence (write_failure); anything else
    passes through as is. Either way, nothing is left behind on failure.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_beside(path, path.suffix)
    except OSError as exc:  # the folder cannot be made or written to
        raise write_failure(path, exc, what) from exc
    ok = False
    try:
        info = write(tmp)
        fsync_path(tmp)
        ok = True
    except (OSError, Incomplete) as exc:
        raise write_failure(path, exc, what) from exc
    finally:
        if not ok:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    return Staged(tmp, path, dict(info))


@contextlib.contextmanager
def scratch_beside(path: str | os.PathLike, suffix: str) -> Iterator[Path]:
    """A hidden scratch file beside `path` (a palette, a trial encode), removed on exit.

    Beside the target, not in /tmp: it is as big as the output, so it belongs on the disk
    the user chose for outputs, and a full disk there is reported like any other write.
    """
    tmp = temp_beside(Path(path), suffix)
    try:
        yield tmp
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def stage_jpeg(rgb: np.ndarray, path: str | os.PathLike, *, side: int = 480) -> Staged:
    """A small JPEG poster of one RGB frame (the clip's thumbnail in History)."""
    import cv2

    h, w = rgb.shape[:2]
    f = min(1.0, side / max(h, w))
    if f < 1.0:
        rgb = cv2.resize(rgb, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(
        ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85]
    )
    if not ok:
        raise ValueError("could not encode the poster frame")
    return stage_bytes(data.tobytes(), path)


def stage_bytes(data: bytes, path: str | os.PathLike) -> Staged:
    """Write bytes into a hidden temp file beside `path`, flushed to the disk."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_beside(path, path.suffix)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if isinstance(exc, OSError):
            raise write_failure(path, exc, "file") from exc
        raise
    return Staged(tmp, path)


def stage_text(text: str, path: str | os.PathLike) -> Staged:
    """Write text into a hidden temp file beside `path`, flushed to the disk."""
    return stage_bytes(text.encode("utf-8"), path)


def _json(data: Any) -> str:
    # Serialised before any file is made: an unserialisable value leaves no temp file behind.
    return json.dumps(data, indent=2, sort_keys=False) + "\n"


def stage_json(data: Any, path: str | os.PathLike) -> Staged:
    return stage_text(_json(data), path)


def write_together(files: list[tuple[Path, bytes | dict]]) -> list[Path]:
    """Write several files as one: each is staged under a temp name (a dict as JSON, bytes as
    they are), then all are given their names in order. If any step fails, none of them is
    left: the staged ones are discarded, the named ones removed, and the error goes on."""
    staged: list[Staged] = []
    committed: list[Path] = []
    try:
        for target, content in files:
            is_json = isinstance(content, dict)
            staged.append(stage_json(content, target) if is_json else stage_bytes(content, target))
        for item in staged:
            committed.append(item.commit())
    except BaseException:
        for item in staged:
            item.discard()
        for path in committed:
            path.unlink(missing_ok=True)
        raise
    return committed


def write_text(text: str, path: str | os.PathLike) -> Path:
    """Write text atomically (temp file in the same folder, fsync, rename)."""
    return publish(stage_text(text, path), "file")


def write_json(data: Any, path: str | os.PathLike) -> Path:
    """Write JSON atomically (temp file in the same folder, fsync, rename)."""
    return write_text(_json(data), path)


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
