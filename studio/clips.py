"""Run a prepared job: render each variant, encode it, score it, write its manifest, stream updates."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from studio import __version__
from studio.backends.base import RenderContext
from studio.encode import Staged, stage_jpeg, stage_json, stage_mp4, write_failure, write_json
from studio.jobs import PreparedJob
from studio.plan import VariantPlan
from studio.presets import Preset
from studio.settings import Settings

log = logging.getLogger(__name__)


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
        # manifest alone, which start-up recovery removes (studio.serve.retention).
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
