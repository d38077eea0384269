"""Load and validate the platform export targets in presets/exports.yaml into typed objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from studio import yamlio
from studio.errors import PresetError
from studio.fields import FieldReader
from studio.presets import ASPECTS, BUILTIN_DIR

EXPORTS_FILE = BUILTIN_DIR / "exports.yaml"
DITHERS = ("sierra2_4a", "sierra2", "floyd_steinberg", "bayer", "none")  # ffmpeg paletteuse's


@dataclass(frozen=True)
class VideoRate:
    """Rate control for MP4/WebM: a ceiling over constant quality (see presets/exports.yaml)."""

    bitrate_kbps: int
    maxrate_kbps: int
    bufsize_kbits: int


@dataclass(frozen=True)
class GifRule:
    """How a GIF is fitted under its size cap."""

    cap_mb: float = 8.0
    max_fps: float = 25.0
    min_fps: float = 12.0  # the rate may drop to here before the frame shrinks
    min_width: int = 160
    dither: str = "sierra2_4a"


@dataclass(frozen=True)
class Codecs:
    """Encoder quality settings shared by every target (presets/exports.yaml defaults)."""

    mp4_crf: int = 18
    mp4_preset: str = "veryfast"
    webm_crf: int = 32
    webm_cpu_used: int = 4


@dataclass(frozen=True)
class ExportTarget:
    """One platform's frame: size, frame rate, bitrates, GIF cap."""

    id: str
    title: str
    use: str  # where it goes, for the picker: "Reels, TikTok, Shorts"
    aspect: str  # a key of presets.ASPECTS
    width: int
    height: int
    fps: float  # the rate a clip is converted to...
    keep_fps: tuple[float, ...]  # ...unless its own rate is one of these
    video: VideoRate
    gif: GifRule = field(default_factory=GifRule)
    codecs: Codecs = field(default_factory=Codecs)

    def frame_rate(self, source_fps: float) -> float:
        """The rate an export of a clip at source_fps has (the engine can render at it)."""
        if any(abs(source_fps - k) < 0.01 for k in self.keep_fps):
            return float(source_fps)
        return self.fps


class _Fields(FieldReader):
    error = PresetError

    def number(self, name: str, lo: float, hi: float, default: Any = ...) -> float:
        value = self.get(name, float, default)
        if not lo <= value <= hi:
            raise self.fail(name, f"must be between {lo:g} and {hi:g}, got {value:g}.")
        return float(value)

    def whole(self, name: str, lo: int, hi: int, default: Any = ...) -> int:
        value = self.get(name, int, default)
        if not lo <= value <= hi:
            raise self.fail(name, f"must be a whole number from {lo} to {hi}, got {value}.")
        return value

    def text(self, name: str, default: Any = ...) -> str:
        value = self.get(name, str, default).strip()
        if not value:
            raise self.fail(name, "must not be empty.")
        return value


def _gif_rule(data: dict, where: str, base: GifRule) -> GifRule:
    g = _Fields(data, where)
    rule = GifRule(
        cap_mb=g.number("cap_mb", 0.1, 100, base.cap_mb),
        max_fps=g.number("max_fps", 1, 50, base.max_fps),
        min_fps=g.number("min_fps", 1, 50, base.min_fps),
        min_width=g.whole("min_width", 16, 4096, base.min_width),
        dither=g.text("dither", base.dither),
    )
    if rule.dither not in DITHERS:
        raise g.fail("dither", f"must be one of {', '.join(DITHERS)}; got '{rule.dither}'.")
    if rule.min_fps > rule.max_fps:
        raise g.fail("min_fps", f"must not be above max_fps ({rule.max_fps:g}).")
    return rule


def _target(raw: Any, where: str, gif: GifRule, codecs: Codecs) -> ExportTarget:
    f = _Fields(raw, where)
    tid = f.text("id")
    if not tid.replace("-", "").isalnum() or tid != tid.lower():
        raise f.fail("id", f"must be lowercase letters, digits and dashes, got '{tid}'.")
    f.where = where = f"{where} (target '{tid}')"
    aspect = f.text("aspect")
    if aspect not in ASPECTS or ASPECTS[aspect].ratio is None:
        shapes = ", ".join(k for k, a in ASPECTS.items() if a.ratio)
        raise f.fail("aspect", f"must be one of {shapes}; got '{aspect}'.")
    size = f.get("size", list)
    if not (len(size) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in size)):
        raise f.fail("size", f"must be a [width, height] pair of whole numbers, got {size!r}.")
    w, h = size
    if not (16 <= w <= 4096 and 16 <= h <= 4096) or w % 2 or h % 2:
        raise f.fail("size", f"must be even numbers from 16 to 4096 (yuv420p), got {w}x{h}.")
    if abs(w / h / ASPECTS[aspect].ratio - 1) > 0.01:
        raise f.fail("size", f"{w}x{h} is not {aspect}.")
    keep = f.get("keep_fps", list, [])
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in keep):
        raise f.fail("keep_fps", f"must be a list of frame rates, got {keep!r}.")
    v = _Fields(f.get("video", dict), f"{where} video")
    video = VideoRate(
        bitrate_kbps=v.whole("bitrate_kbps", 100, 200_000),
        maxrate_kbps=v.whole("maxrate_kbps", 100, 400_000),
        bufsize_kbits=v.whole("bufsize_kbits", 100, 800_000),
    )
    if video.maxrate_kbps < video.bitrate_kbps:
        raise v.fail("maxrate_kbps", "must not be below bitrate_kbps.")
    return ExportTarget(
        id=tid,
        title=f.text("title"),
        use=f.get("use", str, "").strip(),
        aspect=aspect,
        width=w,
        height=h,
        fps=f.number("fps", 1, 120),
        keep_fps=tuple(float(k) for k in keep),
        video=video,
        gif=_gif_rule(f.get("gif", dict, {}), f"{where} gif", gif),
        codecs=codecs,
    )


def load_targets(path: Path = EXPORTS_FILE) -> dict[str, ExportTarget]:
    """Every export target by id, in file order; PresetError names the file and field."""
    where = str(path)
    try:
        data = yamlio.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise PresetError(f"{where}: cannot be read as YAML ({exc.__class__.__name__}).") from None
    top = _Fields(data, where)
    d = _Fields(top.get("defaults", dict, {}), f"{where} defaults")
    mp4 = _Fields(d.get("mp4", dict, {}), f"{where} defaults mp4")
    webm = _Fields(d.get("webm", dict, {}), f"{where} defaults webm")
    codecs = Codecs(
        mp4_crf=mp4.whole("crf", 0, 51, Codecs.mp4_crf),
        mp4_preset=mp4.text("preset", Codecs.mp4_preset),
        webm_crf=webm.whole("crf", 0, 63, Codecs.webm_crf),
        webm_cpu_used=webm.whole("cpu_used", 0, 8, Codecs.webm_cpu_used),
    )
    gif = _gif_rule(d.get("gif", dict, {}), f"{where} defaults gif", GifRule())
    items = top.get("targets", list)
    if not items:
        raise top.fail("targets", "must list at least one target.")
    targets: dict[str, ExportTarget] = {}
    for i, item in enumerate(items):
        t = _target(item, f"{where} targets[{i}]", gif, codecs)
        if t.id in targets:
            raise PresetError(f"{where}: target id '{t.id}' is defined twice.")
        targets[t.id] = t
    return targets
