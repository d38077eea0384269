"""A generation job as plain data: the request, its validation, and resolving it into plans."""

from __future__ import annotations

import math
import secrets
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from studio.backends import get_backend
from studio.backends.base import Backend
from studio.errors import JobError, clip_text
from studio.images import Photo, load_photo
from studio.loops import with_loop
from studio.motion.edits import SubjectEdit, parse_edits
from studio.motion.framing import explicit_point
from studio.plan import LOOPS, VariantPlan
from studio.presets import ASPECTS, Preset, PresetLibrary, load_library, text_problem
from studio.settings import Settings
from studio.variants import plan_variants

MIN_SIDE, MAX_SIDE = 64, 4096
MAX_FRAMES = 720  # 30 s at 24 fps: beyond that a photo animation stops being believable
MAX_VARIANTS = 8


@dataclass(frozen=True)
class Job:
    """A generation request as plain data, so it can be queued, logged or sent elsewhere."""

    image: str
    preset: str
    backend: str = "engine"
    seed: int | None = None
    variants: int = 4
    aspect: str | None = None  # None = the preset's default
    size: tuple[int, int] | None = None  # explicit (width, height) wins over aspect
    frames: int | None = None  # explicit frame count wins over duration
    duration: float | None = None
    fps: int | None = None
    strength: float | None = None  # None = the preset's (1 for the built-ins)
    params: dict[str, Any] = field(default_factory=dict)
    # The user's corrections to the subject matte (studio.motion.edits.SubjectEdit), in order.
    subject_edits: tuple = ()
    # The user's own wording for text-conditioned models; None = the preset's (whose takes
    # cycle through its phrasings). A prompt given here goes to every take.
    prompt: str | None = None
    negative_prompt: str | None = None  # "" = none at all
    loop: str | None = None  # "seamless", "boomerang" (studio.plan.LOOPS) or None: plays once

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["size"] = list(self.size) if self.size else None
        edits = self.subject_edits
        if isinstance(edits, (list, tuple)):
            edits = [e.to_dict() if isinstance(e, SubjectEdit) else e for e in edits]
        data["subject_edits"] = edits
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Job:
        """The job to_dict() wrote (a manifest's "job"); bad corrections raise a JobError."""
        data = dict(data)
        if data.get("size"):
            data["size"] = tuple(data["size"])
        data["subject_edits"] = parse_edits(data.get("subject_edits"))
        return cls(**data)


def form_job(
    *,
    image: Any,
    preset: Any,
    backend: Any = "engine",
    variants: int = 4,
    aspect: Any = "preset",
    duration: Any = None,
    fps: Any = None,
    seed: Any = -1,
    strength: Any = 1.0,
    model_path: str = "",
    subject_edits: Any = None,
    prompt: Any = None,
    negative_prompt: Any = None,
    loop: Any = None,
) -> Job:
    """A Job from the studio's form (or its API), as sent: -1 is a random seed, 0 or empty
    means the preset's value. Nothing is coerced here; prepare_job refuses what is wrong."""
    return Job(
        image=image,
        preset=preset,
        backend=backend or "engine",
        seed=None if seed is None or (isinstance(seed, int | float) and seed == -1) else seed,
        variants=variants,
        aspect=None if aspect in (None, "", "preset") else aspect,
        duration=duration or None,
        fps=fps or None,
        strength=strength,
        params={"model_path": model_path} if model_path else {},
        subject_edits=() if subject_edits is None else subject_edits,
        prompt=prompt,
        negative_prompt=negative_prompt,
        loop=loop or None,
    )


def _even(x: float) -> int:
    return max(2, int(round(x / 2.0)) * 2)


def _number(x: float) -> str:
    # 2147483647, not 2.14748e+09: a limit is quoted so that it can be typed back.
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _check_number(name: str, value: Any, lo: float, hi: float, integer: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok and integer:
        ok = math.isfinite(value) and float(value).is_integer()
    if not ok or not math.isfinite(value) or not lo <= value <= hi:
        kind = "a whole number" if integer else "a number"
        got = _number(value) if ok and math.isfinite(value) else clip_text(value, 24)
        raise JobError(f"{name} must be {kind} between {_number(lo)} and {_number(hi)}; got {got}.")


def _check_text(name: str, value: Any, example: str) -> None:
    if not isinstance(value, str) or not value or len(value) > 200:
        raise JobError(f"{name} must be one name such as {example}.")


def _check_prompt(name: str, value: Any, *, empty_ok: bool) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise JobError(f"{name} must be text.")
    if not value.strip() and not empty_ok:
        raise JobError(f"{name} is empty; write one, or leave it out to use the preset's.")
    problem = text_problem(value)
    if problem:
        raise JobError(f"{name} {problem}.")


def validate_job(job: Job) -> None:
    """Refuse impossible settings with one clear sentence, before anything touches the disk."""
    _check_text("The preset", job.preset, "product/slow-push-in")
    _check_text("The backend", job.backend, "engine")
    if not isinstance(job.image, str) or not job.image:
        raise JobError("Choose a photo first.")
    if not isinstance(job.params, dict):
        raise JobError("The model settings must be a set of named values.")
    if job.seed is not None:
        _check_number("Seed", job.seed, 0, 2**31 - 1, integer=True)
    _check_number("Number of variants", job.variants, 1, MAX_VARIANTS, integer=True)
    if job.aspect is not None and (not isinstance(job.aspect, str) or job.aspect not in ASPECTS):
        raise JobError(
            f"Aspect must be one of {', '.join(ASPECTS)}; got '{clip_text(job.aspect)}'."
        )
    if job.size is not None:
        if not (isinstance(job.size, (tuple, list)) and len(job.size) == 2):
            raise JobError("Size must be WIDTHxHEIGHT, for example 1024x576.")
        for name, v in zip(("Width", "Height"), job.size, strict=True):
            _check_number(name, v, MIN_SIDE, MAX_SIDE, integer=True)
    if job.frames is not None:
        _check_number("Frames", job.frames, 2, MAX_FRAMES, integer=True)
    if job.fps is not None:
        _check_number("FPS", job.fps, 1, 60, integer=True)
    if job.duration is not None:
        _check_number("Duration (seconds)", job.duration, 0.1, 30)
    if job.strength is not None:
        _check_number("Strength", job.strength, 0, 2)
    _check_prompt("The prompt", job.prompt, empty_ok=False)
    _check_prompt("The negative prompt", job.negative_prompt, empty_ok=True)
    if job.loop is not None and job.loop not in LOOPS:
        raise JobError(f"Loop must be {' or '.join(LOOPS)}; got '{clip_text(job.loop)}'.")
    parse_edits(job.subject_edits)
    explicit_point(job.params)  # a pinned framing point: two numbers in 0..1


def output_size(aspect: str, photo_size: tuple[int, int], long_side: int) -> tuple[int, int]:
    """Width and height for an aspect name, with the long side fixed and both sides even."""
    pw, ph = photo_size
    ratio = ASPECTS[aspect].ratio or pw / ph  # "match": the photo's own
    if ratio >= 1:
        w, h = long_side, long_side / ratio
    else:
        w, h = long_side * ratio, long_side
    return max(MIN_SIDE, _even(w)), max(MIN_SIDE, _even(h))


@dataclass
class PreparedJob:
    """A validated job with everything resolved: the photo, preset, backend and plans."""

    job: Job
    seed: int
    photo: Photo
    preset: Preset
    backend: Backend
    plans: list[VariantPlan]
    warnings: tuple[str, ...] = ()  # the photo's, and any about the output size
    edits: tuple[SubjectEdit, ...] = ()  # the job's subject corrections, checked


def prepare_job(job: Job, settings: Settings, library: PresetLibrary | None = None) -> PreparedJob:
    """Validate and resolve a job; raises a StudioError and writes nothing when it is wrong."""
    validate_job(job)
    edits = parse_edits(job.subject_edits)
    library = library or load_library(user_dir=settings.user_presets_dir)
    preset = library.get(job.preset)
    backend = get_backend(job.backend, settings)
    seed = int(job.seed) if job.seed is not None else secrets.randbelow(2**31)
    fps = int(job.fps or preset.fps)
    if job.frames is not None:
        frames = int(job.frames)
    else:
        frames = max(2, int(round((job.duration or preset.duration) * fps)))
        if frames > MAX_FRAMES:
            raise JobError(
                f"That is {frames} frames; the limit is {MAX_FRAMES}. Shorten the clip or lower the fps."
            )
    if job.size is not None:
        width, height = _even(job.size[0]), _even(job.size[1])
        max_side = max(width, height)
    else:
        max_side = settings.long_side
    # Decoding a 12 MP photo at full size is wasted work: the engine never needs more
    # than about twice the output resolution.
    photo = load_photo(
        job.image, max_side=2 * max_side, max_bytes=settings.max_upload_mb * 1024 * 1024
    )
    if job.size is None:
        width, height = output_size(
            job.aspect or preset.aspect, photo.rgb.shape[1::-1], settings.long_side
        )
    warnings = (*photo.warnings, *_enlarge_warning(photo.original_size, (width, height)))
    strength = preset.strength if job.strength is None else float(job.strength)
    plans = plan_variants(
        preset,
        seed=seed,
        n=int(job.variants),
        width=width,
        height=height,
        frames=frames,
        fps=fps,
        strength=strength,
        params=job.params,
        prompt=None if job.prompt is None else job.prompt.strip(),
        negative_prompt=None if job.negative_prompt is None else job.negative_prompt.strip(),
    )
    plans = with_loop(plans, job.loop, backend.id)
    job = replace(job, seed=seed, strength=strength, subject_edits=edits)
    return PreparedJob(job, seed, photo, preset, backend, plans, warnings, edits)


ENLARGE_WARN = 2.0  # twice the photo's pixels per side and more: visibly soft, worth a word


def _enlarge_warning(photo: tuple[int, int], clip: tuple[int, int]) -> tuple[str, ...]:
    """A sentence when the clip needs many more pixels than the photo has."""
    pw, ph = photo
    w, h = clip
    # The clip shows a crop of the photo at the clip's aspect: the largest such crop.
    scale = w / min(pw, ph * w / h)
    if scale < ENLARGE_WARN:
        return ()
    return (
        f"This photo is {pw}x{ph}, so the {w}x{h} clip enlarges it {scale:.1f}x and will "
        "look soft; a larger photo or a smaller size looks sharper.",
    )
