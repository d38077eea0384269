"""Plan N variants of one photo + preset (seeds, jitter) and run them on a backend into MP4 clips."""

from __future__ import annotations

import logging
import math
import secrets
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from studio import __version__
from studio.backends import get_backend
from studio.backends.base import Backend, RenderContext
from studio.encode import Staged, stage_jpeg, stage_json, stage_mp4, write_failure, write_json
from studio.errors import JobError
from studio.images import Photo, load_photo
from studio.plan import Ambient, CameraMove, VariantPlan
from studio.presets import ASPECTS, Preset, PresetLibrary, load_library
from studio.security import clip_text
from studio.settings import Settings

log = logging.getLogger(__name__)

ASPECT_RATIOS = {"16:9": 16 / 9, "9:16": 9 / 16, "1:1": 1.0, "4:5": 4 / 5}
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
    strength: float = 1.0
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["size"] = list(self.size) if self.size else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Job:
        data = dict(data)
        if data.get("size"):
            data["size"] = tuple(data["size"])
        return cls(**data)


@dataclass(frozen=True)
class Clip:
    """One finished variant on disk, with its manifest beside it."""

    index: int
    seed: int
    path: Path
    manifest: Path
    width: int
    height: int
    frames: int
    fps: int
    plan: dict[str, Any]
    timings: dict[str, float]
    score: dict[str, Any] | None = None  # studio.scoring ClipScore.to_dict(), when scored


@dataclass
class JobUpdate:
    """What the UI/CLI sees while a job runs: progress, and clips as each one finishes."""

    progress: float
    message: str
    clips: list[Clip]
    new_clip: Clip | None = None
    done: bool = False
    manifest: Path | None = None
    seed: int | None = None
    warnings: tuple[str, ...] = ()
    ranking: list[int] | None = None  # clip indices best-first, once every clip is scored
    badges: dict[int, list[str]] | None = None


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
        strength=1.0 if strength is None else strength,
        params={"model_path": model_path} if model_path else {},
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
    if job.aspect is not None and job.aspect not in ASPECTS:
        raise JobError(f"Aspect must be one of {', '.join(ASPECTS)}; got '{job.aspect}'.")
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
    _check_number("Strength", job.strength, 0, 2)


def output_size(aspect: str, photo_size: tuple[int, int], long_side: int) -> tuple[int, int]:
    """Width and height for an aspect name, with the long side fixed and both sides even."""
    pw, ph = photo_size
    ratio = pw / ph if aspect == "match" else ASPECT_RATIOS[aspect]
    if ratio >= 1:
        w, h = long_side, long_side / ratio
    else:
        w, h = long_side * ratio, long_side
    return max(MIN_SIDE, _even(w)), max(MIN_SIDE, _even(h))


def _stratified(rng: np.random.Generator, n: int, lo: float, hi: float) -> list[float]:
    # One value from each of n equal slices, in shuffled order: four variants spread
    # across the range instead of clumping, which is what makes them worth comparing.
    if hi <= lo:
        return [lo] * n
    slots = rng.permutation(n)
    return [lo + (hi - lo) * (s + rng.uniform(0.15, 0.85)) / n for s in slots]


def plan_variants(
    preset: Preset,
    *,
    seed: int,
    n: int,
    width: int,
    height: int,
    frames: int,
    fps: int,
    strength: float = 1.0,
    params: dict[str, Any] | None = None,
) -> list[VariantPlan]:
    """Pure: the N plans for one job. Same inputs, same plans."""
    rng = np.random.default_rng(seed)
    var = preset.variation
    directions = _stratified(rng, n, *var.direction)
    amplitudes = _stratified(rng, n, *var.amplitude)
    easings = [
        var.easing[int(i)] for i in rng.permutation(max(n, len(var.easing))) % len(var.easing)
    ]
    child_seeds = [
        int(s.generate_state(1)[0] % 2**31) for s in np.random.SeedSequence(seed).spawn(n)
    ]
    plans = []
    for i in range(n):
        amp = amplitudes[i] * strength
        direction = preset.camera.direction + directions[i]
        if var.flip and i % 2 == 1:
            direction += 180.0
        angle, radius = rng.uniform(0, 2 * np.pi), var.focus * math.sqrt(rng.uniform())
        fx = float(np.clip(preset.camera.focus[0] + radius * math.cos(angle), 0.05, 0.95))
        fy = float(np.clip(preset.camera.focus[1] + radius * math.sin(angle), 0.05, 0.95))
        camera = CameraMove(
            move=preset.camera.move,
            strength=float(min(1.0, preset.camera.strength * amp)),
            direction=float((direction + 180.0) % 360.0 - 180.0),
            focus=(round(fx, 4), round(fy, 4)),
            easing=easings[i],
        )
        ambient = tuple(Ambient(a.kind, float(min(1.0, a.strength * amp))) for a in preset.ambient)
        plans.append(
            VariantPlan(
                index=i,
                seed=child_seeds[i],
                width=width,
                height=height,
                frames=frames,
                fps=fps,
                camera=camera,
                ambient=ambient,
                prompt=preset.prompt,
                negative_prompt=preset.negative_prompt,
                params=dict(params or {}),
            )
        )
    return plans


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


def prepare_job(job: Job, settings: Settings, library: PresetLibrary | None = None) -> PreparedJob:
    """Validate and resolve a job; raises a StudioError and writes nothing when it is wrong."""
    validate_job(job)
    library = library or load_library(user_dir=settings.user_presets_dir)
    preset = library.get(job.preset)
    backend = get_backend(job.backend)
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
    plans = plan_variants(
        preset,
        seed=seed,
        n=int(job.variants),
        width=width,
        height=height,
        frames=frames,
        fps=fps,
        strength=float(job.strength),
        params=job.params,
    )
    return PreparedJob(replace(job, seed=seed), seed, photo, preset, backend, plans, warnings)


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


def clip_name(preset: Preset, plan: VariantPlan) -> str:
    # Generated from our own ids only: never from the uploaded file's name.
    return f"{preset.family}-{preset.name}-v{plan.index + 1}-{plan.seed}"


def run_job(
    prepared: PreparedJob,
    out_dir: str | Path,
    settings: Settings,
    ctx: RenderContext | None = None,
) -> Iterator[JobUpdate]:
    """Render every variant, encode each to MP4 with its manifest, and stream updates.

    Variants of CPU backends render in parallel threads (OpenCV and ffmpeg release the
    GIL); model backends batch or sequence them themselves via render_many.
    """
    ctx = ctx or RenderContext()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    p = prepared
    n = len(p.plans)
    fractions = [0.0] * n
    outer_progress = ctx.progress

    def on_progress(index: int, fraction: float) -> None:
        fractions[index] = fraction
        if outer_progress is not None:
            outer_progress(index, fraction)

    ctx = RenderContext(cancel=ctx.cancel, progress=on_progress)
    started = time.perf_counter()
    base_manifest = {
        "studio_version": __version__,
        "job": p.job.to_dict(),
        "input": {
            "sha256": p.photo.sha256,
            "format": p.photo.source_format,
            "size": list(p.photo.original_size),
        },
        "preset": p.preset.id,
        "backend": p.backend.id,
    }
    yield JobUpdate(0.0, "Analysing the photo…", [], seed=p.seed, warnings=p.warnings)
    t0 = time.perf_counter()
    scene = p.backend.prepare(p.photo.rgb, p.plans, ctx)
    prepare_s = time.perf_counter() - t0

    def finish(plan: VariantPlan, frames, t_start: float) -> tuple[Clip, list[Staged]]:
        """Render + encode one variant and write its manifest, both still under temp names."""
        name = clip_name(p.preset, plan)
        keep: list[np.ndarray] = []
        if settings.score:
            # Keep a small copy of each frame as it streams to the encoder, so the clip is
            # scored without decoding it again.
            frames = _tee_small(frames, keep)
        poster: list[np.ndarray] = []
        frames = _tee_frame(frames, plan.frames // 2, poster)
        video = stage_mp4(
            frames, out / f"{name}.mp4", fps=plan.fps, crf=settings.crf, preset=settings.x264_preset
        )
        info = video.info
        staged: list[Staged] = []
        try:
            timings = {
                "prepare_s": round(prepare_s, 4),
                "render_encode_s": round(time.perf_counter() - t_start, 4),
            }
            score = None
            if keep:
                t_score = time.perf_counter()
                size = (info["width"], info["height"])
                score = _score_safely(keep, p.photo.rgb, plan.fps, size, still=plan.still)
                keep.clear()
                timings["score_s"] = round(time.perf_counter() - t_score, 4)
            manifest = {
                **base_manifest,
                "seed": plan.seed,
                "job_seed": p.seed,
                "variant": plan.index + 1,
                "plan": plan.to_dict(),
                "video": {k: v for k, v in info.items() if k != "path"}
                | {"file": Path(info["path"]).name},
                "score": score,
                "timings": timings,
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            }
            staged.append(stage_json(manifest, out / f"{name}.json"))
            if poster:
                staged.append(stage_jpeg(poster[0], out / f"{name}.jpg"))
        except BaseException:
            for item in (*staged, video):
                item.discard()
            raise
        fractions[plan.index] = 1.0
        clip = Clip(plan.index, plan.seed, video.path, staged[0].path, info["width"], info["height"],
                    info["frames"], plan.fps, plan.to_dict(), timings, score)  # fmt: skip
        return clip, [*staged, video]

    clips: list[Clip] = []

    def publish(clip: Clip, staged: list[Staged]) -> Clip:
        # A clip and its manifest appear together: manifest first, then the MP4, whose final
        # name is what History and the file listing look for. A crash between the two leaves a
        # manifest alone, which start-up recovery removes (studio.retention).
        try:
            ctx.check_cancel()  # a take that finished while Cancel was pressed is not kept
            for item in staged:
                item.commit()
        except BaseException as exc:
            for item in staged:
                item.discard()
            for item in staged:  # committed before the MP4 failed
                item.path.unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise write_failure(clip.path, exc, "video") from exc
            raise
        clips.append(clip)
        return clip

    def update(new: Clip | None) -> JobUpdate:
        done = len(clips)
        msg = (
            f"Rendered {done} of {n} variants" if new else f"Rendering {n} variants ({done} done)…"
        )
        return JobUpdate(
            sum(fractions) / n, msg, sorted(clips, key=lambda c: c.index), new, seed=p.seed
        )

    if p.backend.parallel_variants and settings.workers > 1 and n > 1:

        def work(plan: VariantPlan) -> tuple[Clip, list[Staged]]:
            return finish(plan, p.backend.render(scene, plan, ctx), time.perf_counter())

        pool = ThreadPoolExecutor(
            max_workers=min(settings.workers, n), thread_name_prefix="variant"
        )
        futures = [pool.submit(work, plan) for plan in p.plans]
        taken: set[Future] = set()
        try:
            pending = set(futures)
            while pending:
                finished, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
                for fut in finished:
                    taken.add(fut)
                    clip = publish(*fut.result())  # re-raises the worker's error here
                    yield update(clip)
                if not finished:
                    yield update(None)
        except BaseException:
            ctx.cancel.set()  # stop sibling variants promptly; their temp files are removed
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            for fut in futures:  # finished after we stopped listening: never published
                if fut not in taken and not fut.cancelled() and fut.exception() is None:
                    for item in fut.result()[1]:
                        item.discard()
    else:
        t_start = time.perf_counter()
        for pos, frames in p.backend.render_many(scene, p.plans, ctx):
            clip = publish(*finish(p.plans[pos], frames, t_start))
            yield update(clip)
            t_start = time.perf_counter()

    clips.sort(key=lambda c: c.index)
    ranking, badges = _rank(clips)
    summary = {
        **base_manifest,
        "job_seed": p.seed,
        "clips": [
            {
                "variant": c.index + 1,
                "seed": c.seed,
                "file": c.path.name,
                "manifest": c.manifest.name,
            }
            for c in clips
        ],
        "timings": {
            "prepare_s": round(prepare_s, 4),
            "total_s": round(time.perf_counter() - started, 4),
        },
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    manifest = write_json(summary, out / "manifest.json")
    yield JobUpdate(
        1.0, f"Done: {n} variants", clips, None, True, manifest, p.seed, p.warnings,
        ranking, badges,
    )  # fmt: skip


def _tee_frame(frames, index: int, keep: list[np.ndarray]):
    """Pass frames through unchanged, keeping a copy of one of them (the poster)."""
    for i, frame in enumerate(frames):
        if i == index or (i == 0 and not keep):
            keep[:] = [frame.copy()]
        yield frame


def _tee_small(frames, keep: list[np.ndarray]):
    """Pass frames through unchanged, keeping a copy downscaled for scoring."""
    import cv2

    from studio.scoring import DECODE_SIDE

    for frame in frames:
        h, w = frame.shape[:2]
        f = min(1.0, DECODE_SIDE / max(h, w))
        if f < 1.0:
            small = cv2.resize(frame, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA)
        else:
            small = frame.copy()
        keep.append(small)
        yield frame


def _score_safely(
    frames: list[np.ndarray], source: np.ndarray, fps: int, size: tuple[int, int], still: bool
):
    """Score a finished clip; a scoring problem must never cost the creator the clip itself."""
    from studio.scoring import score_frames

    try:
        stack = np.stack(frames)
        return score_frames(stack, source=source, fps=fps, native_size=size, still=still).to_dict()
    except Exception:
        log.exception("scoring a finished clip failed")  # a bug, logged; the clip is still good
        return None


def _rank(clips: list[Clip]) -> tuple[list[int] | None, dict[int, list[str]] | None]:
    """Clip indices best-first and badges by index, when every clip was scored."""
    if not clips or any(c.score is None for c in clips):
        return None, None
    from studio.scoring import ClipScore, badges, rank

    scores = [
        ClipScore(path=str(c.path), score=c.score["score"], static=c.score["static"],
                  metrics={k: v for k, v in c.score.items() if k not in ("path", "score", "static")})
        for c in clips
    ]  # fmt: skip
    order = rank(scores)
    return [clips[i].index for i in order], {clips[i].index: b for i, b in badges(scores).items()}
