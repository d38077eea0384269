"""Takes to post: platform exports beside each clip, several photos in one go, and the ZIP of chosen takes."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from studio.encode import publish, stage_with
from studio.errors import JobError, clip_text
from studio.export import FORMATS, Crop, ExportResult, export_clip, export_path
from studio.platforms import ExportTarget, VideoRate, load_targets

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")
MAX_BATCH = 50  # photos in one go: more is a job for the command line, a folder at a time
GIF_CAP_RANGE = (0.5, 50.0)  # MB a user may ask a GIF to fit
# Upload rates per pixel for an export at the clip's own size: those of the 1080p targets.
_KBPS_PER_MPIXEL = 8000 / (1920 * 1080 / 1e6)


# 1. Which frame an export is made for ---------------------------------------------------


def targets() -> dict[str, ExportTarget]:
    """The platform targets of presets/exports.yaml, by id."""
    return load_targets()


def platform_names(found: dict[str, ExportTarget] | None = None) -> list[str]:
    """The names a platform may be given by: each target's id, then its aspect."""
    found = found or targets()
    return [*found, *(t.aspect for t in found.values())]


def pick_platform(name: Any, found: dict[str, ExportTarget] | None = None) -> ExportTarget | None:
    """The target named by its id ("vertical") or its aspect ("9:16"); None for none."""
    if name is None or name in ("", "none", "clip"):
        return None
    found = found or targets()
    for t in found.values():
        if name in (t.id, t.aspect):
            return t
    names = ", ".join(platform_names(found))
    raise JobError(f"Platform must be one of {names}; got '{clip_text(name)}'.")


def check_format(fmt: Any) -> str:
    """An export format as typed ("MP4", "webm"), or one sentence saying which there are."""
    value = fmt.strip().lower() if isinstance(fmt, str) else fmt
    if value not in FORMATS:
        raise JobError(f"Export format must be MP4, WebM or GIF; got '{clip_text(fmt)}'.")
    return value


def check_gif_cap(cap: Any) -> float | None:
    """A GIF size cap in MB (None or 0: the target's own)."""
    if cap is None or (isinstance(cap, int | float) and not isinstance(cap, bool) and cap == 0):
        return None
    lo, hi = GIF_CAP_RANGE
    ok = isinstance(cap, int | float) and not isinstance(cap, bool) and lo <= cap <= hi
    if not ok:
        raise JobError(f"The GIF size cap must be a number of MB from {lo:g} to {hi:g}.")
    return float(cap)


def clip_target(width: int, height: int, fps: float) -> ExportTarget:
    """A target that keeps a clip's own frame and rate (an export without a platform)."""
    base = next(iter(targets().values()))
    kbps = max(300, round(_KBPS_PER_MPIXEL * width * height / 1e6))
    rate = VideoRate(kbps, round(kbps * 1.5), round(kbps * 2.25))
    return replace(base, id="clip", title="The clip's own size", use="", width=int(width),
                   height=int(height), fps=float(fps), keep_fps=(float(fps),), video=rate)  # fmt: skip


def for_platform(job: Any, target: ExportTarget | None) -> Any:
    """The job rendering natively at the target's frame: the engine renders at any size,
    so its plan's size is the platform's (a size the user gave wins). Model backends keep
    their own size; their takes are cropped and resized when exported."""
    if target is None or job.size is not None or job.backend != "engine":
        return job
    return replace(job, size=(target.width, target.height), aspect=target.aspect)


def enlarge_warning(photo_size: tuple[int, int], target: ExportTarget) -> str:
    """One sentence when the platform's frame needs more pixels than the photo has."""
    pw, ph = photo_size
    w, h = target.width, target.height
    scale = w / min(pw, ph * w / h)  # the largest crop of the frame's shape, enlarged
    if scale <= 1.01:
        return ""
    return (
        f"This photo is {pw}x{ph}, smaller than the {w}x{h} {target.title} frame, so it is "
        f"enlarged {scale:.1f}x and may look soft; a larger photo looks sharper."
    )


# 2. Exports beside each clip ------------------------------------------------------------


@dataclass
class Framer:
    """Crops for exports of one photo's takes, placed on its subject (found once, lazily)."""

    rgb: Any  # the photo, RGB uint8
    _beliefs: Any = None

    def crop(self, clip_size: tuple[int, int], target: ExportTarget) -> Crop | None:
        """None when the clip already has the target's shape, else the framed crop."""
        w, h = clip_size
        if abs(w / h / (target.width / target.height) - 1) <= 0.01:
            return None
        from studio.motion.framing import crop_for

        if self._beliefs is None:
            import cv2

            from studio.inspect import PREVIEW_SIDE, preview_beliefs

            rgb = self.rgb
            f = PREVIEW_SIDE / max(rgb.shape[:2])
            if f < 1:  # the subject of a small copy frames the take as well, much sooner
                size = (max(2, round(rgb.shape[1] * f)), max(2, round(rgb.shape[0] * f)))
                rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
            self._beliefs = preview_beliefs(rgb)
        return Crop(*crop_for(self._beliefs, (w, h), (target.width, target.height)))


def export_one(
    clip: str | os.PathLike,
    clip_size: tuple[int, int],
    clip_fps: float,
    fmt: str,
    target: ExportTarget | None,
    framer: Framer | None = None,
    gif_cap_mb: float | None = None,
) -> ExportResult:
    """Export one clip beside itself ("take.vertical.webm", or "take.webm" at its own size)."""
    clip = Path(clip)
    if target is None:
        target = clip_target(*clip_size, clip_fps)
        out = (
            clip.with_name(f"{clip.stem}.{fmt}")
            if fmt != "mp4"
            else clip.with_name(f"{clip.stem}.export.mp4")
        )
        crop = None
    else:
        out = export_path(clip, fmt, target)
        crop = framer.crop(clip_size, target) if framer else None
    return export_clip(clip, fmt, target, out, crop=crop, gif_cap_mb=gif_cap_mb)


def export_clips(
    clips: Iterable[Any],
    formats: Sequence[str],
    target: ExportTarget | None,
    framer: Framer | None = None,
    gif_cap_mb: float | None = None,
) -> list[ExportResult]:
    """Every format of every clip (studio.clips.Clip), written atomically beside it.

    Without a platform an MP4 is the clip itself, so only WebM and GIF are made."""
    done = []
    for clip in clips:
        for fmt in dict.fromkeys(formats):
            if fmt == "mp4" and target is None:
                continue
            done.append(export_one(clip.path, (clip.width, clip.height), clip.fps, fmt,
                                   target, framer, gif_cap_mb))  # fmt: skip
    return done


# 3. Several photos in one go ------------------------------------------------------------


def photos_in(folder: str | os.PathLike) -> list[Path]:
    """The photos of a folder (not its subfolders), by name; hidden files are skipped."""
    folder = Path(folder)
    if not folder.is_dir():
        raise JobError(f"--input-dir {folder} is not a folder.")
    found = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                   and p.suffix.lower() in PHOTO_SUFFIXES)  # fmt: skip
    if not found:
        raise JobError(f"There are no photos (JPEG, PNG, WebP, BMP, TIFF, GIF) in {folder}.")
    return found


def photo_folders(photos: Sequence[str | os.PathLike], out: Path) -> list[Path]:
    """OUT/<photo-stem>/ for each photo; a stem that repeats gets -2, -3..."""
    seen: dict[str, int] = {}
    folders = []
    for photo in photos:
        stem = Path(photo).stem or "photo"
        stem = "".join(c if c.isalnum() or c in "-_." else "-" for c in stem).strip(".") or "photo"
        n = seen.get(stem.lower(), 0) + 1
        seen[stem.lower()] = n
        folders.append(out / (stem if n == 1 else f"{stem}-{n}"))
    return folders


def photo_line(k: int, total: int, name: str, state: str) -> str:
    """One progress line of a batch: "Photo 2 of 5 (cat.png): rendering · 40%"."""
    return f"Photo {k} of {total} ({name}): {state}"


# 4. The ZIP of the chosen takes ---------------------------------------------------------


def write_zip(members: Sequence[tuple[Path, str]], out: str | os.PathLike) -> Path:
    """Write (file, name in the ZIP) pairs into one ZIP, atomically: whole or not at all.

    Clips are already compressed, so members are stored; names are checked to be plain
    relative paths."""
    names = [name for _, name in members]
    if len(set(names)) != len(names):
        raise ValueError("two members share a name")
    for name in names:
        if name.startswith("/") or ".." in Path(name).parts:
            raise ValueError(f"member name {name!r} is not a plain relative path")

    def write(tmp: Path) -> dict[str, Any]:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as z:
            for path, name in members:
                z.write(path, name)
        return {"members": len(members)}

    staged = stage_with(out, write, what="ZIP")
    return publish(staged, "ZIP")


def selected_members(entries: Iterable[Any], prefix: str = "") -> list[tuple[Path, str]]:
    """A ZIP's members for History entries: each take's MP4 and its manifest beside it."""
    members = []
    for e in entries:
        clip = Path(e.path)
        for path in (clip, clip.with_suffix(".json")):
            if path.is_file():
                members.append((path, f"{prefix}{path.name}"))
    return members
