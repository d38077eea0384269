"""Platform exports: a clip or frames -> MP4 (H.264), WebM (VP9) or a size-capped GIF, atomically.

An export is cut (a crop rectangle in source pixels, centred by default), resized with lanczos
to a platform's frame (presets/exports.yaml, loaded by studio.platforms), converted to the
platform's frame rate, encoded by the ffmpeg that imageio-ffmpeg bundles into a hidden temp
file beside the target, checked (frame count, size, codec), flushed and renamed, like the
clips (studio/encode.py). A GIF's size cap is in MB of 10^6 bytes.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from studio.encode import Incomplete, publish, scratch_beside, stage_with
from studio.errors import ClipError, EncodeError
from studio.platforms import ExportTarget, GifRule, load_targets

log = logging.getLogger(__name__)

FORMATS = ("mp4", "webm", "gif")
_LABEL = {"mp4": "MP4", "webm": "WebM", "gif": "GIF"}

_GIF_WIDTH_STEP = 0.9  # each smaller try is 10% narrower (19% fewer pixels)
_GIF_PROBE_WIDTH = 480  # the estimate is encoded at most this wide: cheap, and over-predicts
_GIF_AIM = 0.92  # aim below the cap: the size model is a rough one
_GIF_TRIES = 5  # encodes, the estimate included, before settling for the best that fitted
_PALETTE_WIDTH = 320  # the palette is counted on a copy this small and this sparse:
_PALETTE_FPS = Fraction(8)  # the same colours as the full clip at a fraction of the cost


# 1. What an export is cut from, and what it reports ------------------------------------


@dataclass(frozen=True)
class Crop:
    """A rectangle of the source, in source pixels, that becomes the whole export frame."""

    x: int
    y: int
    w: int
    h: int


def centre_crop(source_size: tuple[int, int], target: ExportTarget) -> Crop:
    """The largest rectangle of the target's shape in the middle of the source."""
    sw, sh = source_size
    ratio = target.width / target.height
    if sw / sh > ratio:  # wider than the target: trim the sides
        w, h = min(sw, round(sh * ratio)), sh
    else:
        w, h = sw, min(sh, round(sw / ratio))
    return Crop((sw - w) // 2, (sh - h) // 2, w, h)


def _checked_crop(crop: Crop | tuple | None, size: tuple[int, int], target: ExportTarget) -> Crop:
    if crop is None:
        return centre_crop(size, target)
    c = crop if isinstance(crop, Crop) else Crop(*(int(v) for v in crop))
    sw, sh = size
    if c.w <= 0 or c.h <= 0 or c.x < 0 or c.y < 0 or c.x + c.w > sw or c.y + c.h > sh:
        raise ValueError(f"crop {c} does not lie inside the {sw}x{sh} source")
    # A crop of another shape would be stretched; 2% absorbs rounding on small sources.
    if abs(c.w / c.h / (target.width / target.height) - 1) > 0.02:
        raise ValueError(f"crop {c.w}x{c.h} is not the shape of {target.width}x{target.height}")
    return c


@dataclass
class ExportResult:
    """One written export, as a player would see it."""

    path: Path
    fmt: str
    target: str  # the target's id
    width: int
    height: int
    fps: float
    frames: int
    duration: float  # seconds
    bytes: int
    codec: str
    pix_fmt: str
    crop: Crop
    upscaled: bool = False
    warning: str = ""  # one sentence for the user, or ""
    encodes: int = 1  # ffmpeg runs it took (a GIF fitting its cap takes several)
    seconds: float = 0.0  # wall time of the export

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for a manifest."""
        out = asdict(self)
        out["path"] = str(self.path)
        out["fps"] = round(self.fps, 3)
        out["duration"] = round(self.duration, 3)
        out["seconds"] = round(self.seconds, 3)
        return out


def export_path(clip: str | os.PathLike, fmt: str, target: ExportTarget) -> Path:
    """Where an export of a clip goes: beside it, "take-1.mp4" -> "take-1.vertical.webm"."""
    clip = Path(clip)
    return clip.with_name(f"{clip.stem}.{target.id}.{fmt}")


# 2. The source: a clip on disk, or frames in memory / streaming ------------------------


@dataclass
class _Source:
    size: tuple[int, int]
    fps: Fraction
    path: Path | None = None  # a clip ffmpeg reads itself
    frames: Iterable[np.ndarray] | None = None  # else frames piped in as rgb24
    count: int | None = None  # frames in the source, once known

    def input_args(self) -> list[str]:
        if self.path is not None:
            return ["-i", str(self.path)]
        w, h = self.size
        return ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}",
                "-framerate", str(self.fps), "-i", "pipe:0"]  # fmt: skip

    def replayable(self) -> bool:
        return self.path is not None or isinstance(self.frames, (np.ndarray, list, tuple))


def _fraction(fps: float) -> Fraction:
    # 29.97 and friends come back from containers as 29.97002997...: NTSC rates exactly.
    f = Fraction(fps).limit_denominator(1001)
    return f if f > 0 else Fraction(0)


def _open_clip(path: Path) -> _Source:
    import imageio_ffmpeg

    try:
        reader = imageio_ffmpeg.read_frames(str(path))
        try:
            meta = next(reader)
        finally:
            reader.close()
        count, _ = imageio_ffmpeg.count_frames_and_secs(str(path))
    except (OSError, RuntimeError, StopIteration) as exc:
        log.warning("Cannot read %s for export: %s", path, exc)
        raise ClipError("The clip to export is missing or cannot be read as a video.") from None
    fps = _fraction(float(meta.get("fps") or 0))
    if count < 1 or fps <= 0:
        raise ClipError("The clip to export holds no frames.")
    return _Source(size=tuple(meta["source_size"]), fps=fps, path=path, count=count)


def _peek(frames: Iterable[np.ndarray]) -> tuple[tuple[int, int], Iterable[np.ndarray]]:
    """The frame size, without losing the first frame of a one-shot iterator."""
    if isinstance(frames, np.ndarray):
        if frames.ndim != 4:
            raise ValueError(f"frames must be T x H x W x 3, got shape {frames.shape}")
        first = frames[0] if len(frames) else None
        rest: Iterable[np.ndarray] = frames
    elif isinstance(frames, (list, tuple)):
        first = frames[0] if frames else None
        rest = frames
    else:
        it = iter(frames)
        first = next(it, None)
        rest = it if first is None else _chain(first, it)
    if first is None:
        raise ValueError("no frames to export")
    return (first.shape[1], first.shape[0]), rest


def _chain(first: np.ndarray, rest: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    yield first
    yield from rest


# 3. Running ffmpeg ---------------------------------------------------------------------


def _ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _run(args: list[str], source: _Source | None = None) -> int:
    """Run ffmpeg; feed the source's frames on stdin when it has no file. Returns frames fed.

    A crash, an error exit or a refused frame pipe raises Incomplete with ffmpeg's last words
    (write_failure reads them for a full disk); an exception from the frames passes through.
    """
    feed = source is not None and source.path is None
    cmd = [_ffmpeg_exe(), "-hide_banner", "-nostats", "-loglevel", "error", "-y", *args]
    fed = 0
    # stderr to a file, not a pipe: a chatty ffmpeg cannot block on a full pipe while we feed.
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if feed else subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=err)  # fmt: skip
        try:
            if feed:
                try:
                    for frame in source.frames:
                        _check_frame(frame, fed, source.size)
                        proc.stdin.write(np.ascontiguousarray(frame).data)
                        fed += 1
                except BrokenPipeError:
                    pass  # ffmpeg stopped reading; its exit status says why
                finally:
                    with contextlib.suppress(BrokenPipeError):
                        proc.stdin.close()
            rc = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        if rc != 0:
            err.seek(0)
            words = err.read().decode("utf-8", "replace").strip().splitlines()[-3:]
            log.error("ffmpeg exited with %s: %s\n%s", rc, " ".join(cmd), "\n".join(words))
            raise Incomplete(f"ffmpeg exited with status {rc}: {' / '.join(words)}")
    if feed:
        if fed == 0:
            raise ValueError("no frames to export")
        source.count = fed
    return fed


def _check_frame(frame: np.ndarray, i: int, size: tuple[int, int]) -> None:
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"frame {i} has shape {frame.shape} {frame.dtype}, expected RGB uint8")
    if (frame.shape[1], frame.shape[0]) != size:
        raise ValueError(f"frame {i} is {frame.shape[1]}x{frame.shape[0]}, expected {size}")


def _expected(count: int, src_fps: Fraction, fps: Fraction) -> int:
    """Frames ffmpeg's fps filter makes of `count` frames: the clip's duration at the new rate,
    rounded to the nearest frame (halves up), as its default rounding does."""
    if fps == src_fps:
        return count
    return math.floor(count * fps / src_fps + Fraction(1, 2))


def _verify(path: Path, expected: int, exact: bool) -> dict[str, Any]:
    """Frame count (packets, no decoding) and the stream's size/codec; Incomplete if short."""
    import imageio_ffmpeg

    try:
        frames, _ = imageio_ffmpeg.count_frames_and_secs(str(path))
        reader = imageio_ffmpeg.read_frames(str(path))
        try:
            meta = next(reader)
        finally:
            reader.close()
    except (RuntimeError, StopIteration) as exc:  # no trailer, no stream
        raise Incomplete(str(exc).strip().splitlines()[-1:]) from exc
    # A rate change from a container's rounded rate may land a frame either side.
    if frames != expected if exact else abs(frames - expected) > 1:
        raise Incomplete(f"the encoded file holds {frames} of {expected} frames")
    # imageio-ffmpeg hands over ffmpeg's words: "h264 (High)", "yuv420p(tv, bt709, progressive)".
    codec = (meta.get("codec") or "").split(" ")[0].rstrip(",")
    pix_fmt = (meta.get("pix_fmt") or "").split("(")[0].strip()
    return {"frames": frames, "size": tuple(meta["size"]), "codec": codec, "pix_fmt": pix_fmt}


# 4. The filters and encoders -----------------------------------------------------------


def _picture(
    src: _Source, crop: Crop, size: tuple[int, int], fps: Fraction, video: bool = False
) -> str:
    """Rate, cut and resize: the filter chain every format starts with."""
    steps = []
    if fps != src.fps:
        steps.append(f"fps={fps}")  # first: fewer frames to crop and scale when it drops
    if (crop.x, crop.y, crop.w, crop.h) != (0, 0, *src.size):
        steps.append(f"crop={crop.w}:{crop.h}:{crop.x}:{crop.y}")
    scale = f"scale={size[0]}:{size[1]}:flags=lanczos+accurate_rnd+full_chroma_int"
    if video:  # the BT.709 matrix, tagged in the stream, as the clips are (encode.stage_mp4)
        scale += (":out_color_matrix=bt709:out_range=tv,format=yuv420p,"
                  "setparams=range=tv:colorspace=bt709:color_primaries=bt709:color_trc=bt709")  # fmt: skip
    steps.append(scale)
    return ",".join(steps)


_BT709_TAGS = ["-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709",
               "-color_range", "tv"]  # fmt: skip


def _video_args(fmt: str, target: ExportTarget) -> list[str]:
    rate, c = target.video, target.codecs
    if fmt == "mp4":
        # Constant quality, capped: the picture decides the bits until maxrate says stop.
        return ["-c:v", "libx264", "-crf", str(c.mp4_crf), "-preset", c.mp4_preset,
                "-maxrate", f"{rate.maxrate_kbps}k", "-bufsize", f"{rate.bufsize_kbits}k",
                "-movflags", "+faststart", "-f", "mp4"]  # fmt: skip
    # Constrained quality: crf decides, bitrate is the ceiling (libvpx's recommended VOD mode).
    return ["-c:v", "libvpx-vp9", "-crf", str(c.webm_crf), "-b:v", f"{rate.bitrate_kbps}k",
            "-maxrate", f"{rate.maxrate_kbps}k", "-bufsize", f"{rate.bufsize_kbits}k",
            "-deadline", "good", "-cpu-used", str(c.webm_cpu_used), "-row-mt", "1",
            "-f", "webm"]  # fmt: skip


def _encode_video(src: _Source, fmt: str, target: ExportTarget, crop: Crop, fps: Fraction,
                  tmp: Path) -> dict[str, Any]:  # fmt: skip
    size = (target.width, target.height)
    vf = _picture(src, crop, size, fps, video=True)
    _run([*src.input_args(), "-an", "-vf", vf, "-pix_fmt", "yuv420p", *_BT709_TAGS,
          *_video_args(fmt, target), str(tmp)], src)  # fmt: skip
    facts = _verify(tmp, _expected(src.count, src.fps, fps), exact=fps == src.fps)
    if facts["size"] != size:
        raise Incomplete(f"the encoded file is {facts['size']}, expected {size}")
    return {**facts, "width": size[0], "height": size[1], "fps": fps, "encodes": 1,
            "bytes": tmp.stat().st_size}  # fmt: skip


@dataclass(frozen=True)
class _Try:
    width: int
    height: int
    fps: Fraction


def _gif_ladder(target: ExportTarget, crop: Crop, src_fps: Fraction, rule: GifRule) -> list[_Try]:
    """Every GIF the cap may settle on, best first: the rate drops to its lowest at full
    width, then the frame narrows 10% a step to rule.min_width. Never wider than the crop:
    an enlarged GIF spends its bytes on detail that is not there.

    The rates are the source's divided by a whole number (30 -> 15, 24 -> 24, 12), so every
    kept frame is equally far from the last and a pan stays smooth; 30 -> 25 would drop one
    frame in six and judder. ffmpeg spreads a delay that is not whole centiseconds (15 fps:
    6.7 cs) as 7, 7, 6, so the length stays exact.
    """
    ratio = target.height / target.width
    w0 = min(target.width, crop.w)
    lo, hi = Fraction(rule.min_fps), Fraction(rule.max_fps)
    rates = [src_fps / k for k in range(1, 13) if lo <= src_fps / k <= hi]
    if not rates:  # slower than the floor (a model's 8 fps) or between two divisions
        rates = [min(src_fps, hi)]
    ladder = [_Try(w0, max(1, round(w0 * ratio)), r) for r in rates]
    w = w0 * _GIF_WIDTH_STEP
    while round(w) >= rule.min_width:
        ladder.append(_Try(round(w), max(1, round(w * ratio)), rates[-1]))
        w *= _GIF_WIDTH_STEP
    return ladder


def _encode_gif(src: _Source, target: ExportTarget, crop: Crop, cap: int, tmp: Path,
                rule: GifRule) -> dict[str, Any]:  # fmt: skip
    """Fit a GIF under `cap` bytes: estimate from one encode, then shrink until it fits.

    Bytes are modelled as proportional to pixels x frames, from the latest encode. The estimate
    is made narrow and cheap; extrapolating it up over-predicts (a bigger frame compresses a
    little better), so the first real try is usually under the cap and rarely needs another.
    """
    ladder = _gif_ladder(target, crop, src.fps, rule)
    with contextlib.ExitStack() as scratch:
        # 1. One palette for the clip, counted on a small, sparse copy (counting colours is
        #    the slowest pass; a camera move shows the same colours in neighbouring frames).
        palette = scratch.enter_context(scratch_beside(tmp, ".png"))
        first = ladder[0]
        pw = min(first.width, _PALETTE_WIDTH)
        ph = max(1, round(pw * first.height / first.width))
        small = _picture(src, crop, (pw, ph), min(src.fps, _PALETTE_FPS))
        t_pal = time.perf_counter()
        _run([*src.input_args(), "-an", "-vf", f"{small},palettegen=stats_mode=full",
              "-frames:v", "1", "-update", "1", str(palette)], src)  # fmt: skip
        log.debug("GIF palette in %.2f s", time.perf_counter() - t_pal)

        def encode(i: int, whole: bool = False) -> tuple[Path, int]:
            t = ladder[i]
            out = scratch.enter_context(scratch_beside(tmp, ".gif"))
            pic = _picture(src, crop, (t.width, t.height), t.fps)
            use = f"paletteuse=dither={rule.dither}:diff_mode=rectangle"
            # A try that runs past twice the cap is over it: no need to finish it. The
            # estimate is always finished: its size is what the others are predicted from.
            limit = [] if whole else ["-fs", str(2 * cap)]
            _run([*src.input_args(), "-i", str(palette), "-an", "-lavfi",
                  f"[0:v]{pic}[v];[v][1:v]{use}", "-loop", "0", *limit,
                  "-f", "gif", str(out)], src)  # fmt: skip
            size = out.stat().st_size
            log.debug("GIF try %dx%d at %.4g fps: %d bytes (cap %d)", t.width, t.height,
                      float(t.fps), size, cap)  # fmt: skip
            return out, size

        def predict(i: int, at: int, size: int) -> float:
            a, b = ladder[i], ladder[at]
            return size * (a.width * a.height * a.fps) / (b.width * b.height * b.fps)

        # 2. The estimate: the first try no wider than the probe width.
        probe = next((i for i, t in enumerate(ladder) if t.width <= _GIF_PROBE_WIDTH),
                     len(ladder) - 1)  # fmt: skip
        path, size = encode(probe, whole=True)
        tries, last = 1, (probe, size)
        best: tuple[int, Path] | None = None  # the biggest try known to fit
        over = -1  # the smallest try known to be over the cap (and all bigger ones are)
        if size <= cap:
            best = (probe, path)
        else:
            over = probe
            path.unlink()
        # 3. The biggest try predicted to fit, between those two; measure it, learn, repeat.
        #    Out of tries with nothing that fits, the smallest is the last word.
        while True:
            open_ = range(over + 1, best[0] if best else len(ladder))
            if not open_:
                break
            fit = [i for i in open_ if predict(i, *last) <= _GIF_AIM * cap]
            if best and (not fit or tries >= _GIF_TRIES):
                break
            i = fit[0] if fit and tries < _GIF_TRIES else open_[-1]
            path, size = encode(i)
            tries, last = tries + 1, (i, size)
            if size <= cap:
                if best:
                    best[1].unlink()
                best = (i, path)
            else:
                over = i
                path.unlink()
        if best is None:
            t = ladder[-1]
            raise EncodeError(
                f"This clip does not fit in a {_mb(cap)} GIF even at {t.width} px wide and "
                f"{float(t.fps):.3g} frames a second; raise the GIF size cap or export a "
                "shorter clip."
            )
        # 4. The chosen try becomes the staged file (same folder: a rename).
        i, path = best
        os.replace(path, tmp)
    t = ladder[i]
    facts = _verify(tmp, _expected(src.count, src.fps, t.fps), exact=t.fps == src.fps)
    if facts["size"] != (t.width, t.height):
        raise Incomplete(f"the GIF is {facts['size']}, expected {(t.width, t.height)}")
    return {**facts, "width": t.width, "height": t.height, "fps": t.fps, "encodes": tries,
            "bytes": tmp.stat().st_size}  # fmt: skip


def _mb(n: float) -> str:
    return f"{n / 1e6:g} MB"


@contextlib.contextmanager
def _replayable(src: _Source, out: Path) -> Iterator[_Source]:
    """A source ffmpeg can read several times: streamed frames are first spooled, as they
    are (raw RGB in NUT), to a hidden file beside the output, removed when the GIF is done.

    Raw, not compressed: a lossless encode of a 3 s 1080x1920 take cost 5 s to write and 4 s
    to read back on each pass here; raw costs its disk space (560 MB) and nearly no time.
    """
    if src.replayable():
        yield src
        return
    with scratch_beside(out, ".nut") as spool:
        _run([*src.input_args(), "-c:v", "rawvideo", "-f", "nut", str(spool)], src)
        yield replace(src, path=spool, frames=None)


# 5. The one entry point ----------------------------------------------------------------


def export_clip(
    source: str | os.PathLike | Iterable[np.ndarray],
    fmt: str,
    target: ExportTarget,
    out_path: str | os.PathLike,
    *,
    fps: float | None = None,
    crop: Crop | tuple[int, int, int, int] | None = None,
    gif_cap_mb: float | None = None,
) -> ExportResult:
    """Export a clip file, or RGB uint8 frames (then `fps` is their rate), for a platform.

    The picture is `crop` of the source (source pixels; the centre by default), resized with
    lanczos to the target's frame (MP4/WebM: exactly; a GIF: as large as its cap allows, never
    larger than the crop) at the target's frame rate for this source (target.frame_rate). An
    enlarged picture is reported (upscaled, warning). Nothing appears at out_path unless the
    file is complete; failures are an EncodeError in one sentence, a bad argument ValueError.
    """
    t0 = time.perf_counter()
    # 1. Check inputs.
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; expected one of {FORMATS}")
    out = Path(out_path)
    if isinstance(source, (str, os.PathLike)):
        if fps is not None:
            raise ValueError("fps is read from the clip; pass it only with frames")
        src = _open_clip(Path(source))
    else:
        if not fps or fps <= 0:
            raise ValueError("frames need their frame rate (fps)")
        size, frames = _peek(source)
        src = _Source(size=size, fps=_fraction(fps), frames=frames,
                      count=len(frames) if isinstance(frames, (np.ndarray, list, tuple)) else None)  # fmt: skip
    cut = _checked_crop(crop, src.size, target)
    rule = target.gif if gif_cap_mb is None else replace(target.gif, cap_mb=gif_cap_mb)
    rate = _fraction(target.frame_rate(float(src.fps)))
    what = f"{_LABEL[fmt]} export"

    # 2. Encode into a hidden temp file beside the target, checked and flushed.
    def write(tmp: Path) -> dict[str, Any]:
        if fmt == "gif":
            with _replayable(src, tmp) as again:
                return _encode_gif(again, target, cut, round(rule.cap_mb * 1e6), tmp, rule)
        return _encode_video(src, fmt, target, cut, rate, tmp)

    staged = stage_with(out, write, what=what)
    publish(staged, what)
    info = staged.info
    # 3. Say so when the picture was enlarged (a GIF never is: it is capped at the crop).
    upscaled = info["width"] > cut.w or info["height"] > cut.h
    warning = ""
    if upscaled:
        warning = (
            f"This export was enlarged from {cut.w}x{cut.h} to {info['width']}x{info['height']} "
            "px and may look soft; a bigger photo, or rendering at this size, looks sharper."
        )
    fps_out = float(info["fps"])
    return ExportResult(
        path=out,
        fmt=fmt,
        target=target.id,
        width=info["width"],
        height=info["height"],
        fps=fps_out,
        frames=info["frames"],
        duration=info["frames"] / fps_out,
        bytes=info["bytes"],
        codec=str(info["codec"]),
        pix_fmt=str(info["pix_fmt"]),
        crop=cut,
        upscaled=upscaled,
        warning=warning,
        encodes=info["encodes"],
        seconds=time.perf_counter() - t0,
    )


__all__ = [
    "FORMATS",
    "Crop",
    "ExportResult",
    "ExportTarget",
    "centre_crop",
    "export_clip",
    "export_path",
    "load_targets",
]
