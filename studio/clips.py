"""Run a prepared job: render each variant, encode it, score it, write its manifest, stream updates."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from studio import __version__
from studio.audio import mux_audio
from studio.backends.base import RenderContext
from studio.cpu import parallel_section
from studio.encode import Staged, stage_jpeg, stage_json, stage_mp4, write_failure, write_json
from studio.interpolate import interpolate
from studio.jobs import PreparedJob
from studio.loops import loop_frames
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
    manifest_data: dict[str, Any] | None = None  # what the manifest file holds, as written


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


@dataclass
class _Finished:
    """A rendered, encoded and scored variant whose files still carry their temp names."""

    clip: Clip
    files: list[Staged]  # manifest, poster, then the MP4: the order they are published in

    def discard(self) -> None:
        for item in self.files:
            item.discard()


class _JobWriter:
    """Turns a prepared job's variants into published clips in one job folder."""

    def __init__(self, prepared: PreparedJob, out: Path, settings: Settings, ctx: RenderContext):
        self.p, self.out, self.settings = prepared, out, settings
        self.fractions = [0.0] * len(prepared.plans)
        self.clips: list[Clip] = []
        self.prepare_s = 0.0
        self.encode_threads = 0  # x264's own choice, unless variants encode side by side
        outer = ctx.progress

        def on_progress(index: int, fraction: float) -> None:
            self.fractions[index] = fraction
            if outer is not None:
                outer(index, fraction)

        # The job's own context: the same cancel flag, progress kept per variant.
        self.ctx = RenderContext(cancel=ctx.cancel, progress=on_progress)
        self.base_manifest = {
            "studio_version": __version__,
            "job": prepared.job.to_dict(),
            "input": {
                "sha256": prepared.photo.sha256,
                "format": prepared.photo.source_format,
                "size": list(prepared.photo.original_size),
            },
            "preset": prepared.preset.id,
            "backend": prepared.backend.id,
        }

    def finish(
        self,
        plan: VariantPlan,
        frames,
        t_start: float,
        facts: dict[str, Any] | None = None,
        audio=None,
    ) -> _Finished:
        """Encode one variant's frames (scoring small copies as they stream), then stage its
        manifest and poster: everything under temp names until published. facts, what the
        backend reported about the render, go into the manifest's plan as params.rendered;
        audio, a model's sound track, is muxed into the staged MP4."""
        name = clip_name(self.p.preset, plan)
        rate = _PlanRate(plan, facts)
        frames = rate.apply(frames, self.ctx)  # first: everything after sees the final frames
        frames = loop_frames(frames, plan)  # a boomerang or cross-faded loop, as planned
        keep: list[np.ndarray] = []
        if self.settings.score:  # scored without decoding the clip again
            frames = _tee_small(frames, keep)
        poster: list[np.ndarray] = []
        frames = _tee_frame(frames, plan.frames // 2, poster)
        video = stage_mp4(frames, self.out / f"{name}.mp4", fps=plan.fps, crf=self.settings.crf,
                          preset=self.settings.x264_preset, params=self.settings.x264_params,
                          threads=self.encode_threads)  # fmt: skip
        if audio is not None:  # the model's sound track (studio.audio), muxed in as AAC
            video = mux_audio(video, audio)
        info = video.info
        staged: list[Staged] = []
        try:
            timings = {
                "prepare_s": round(self.prepare_s, 4),
                "render_encode_s": round(time.perf_counter() - t_start, 4),
            }
            score = None
            if keep:
                t_score = time.perf_counter()
                size = (info["width"], info["height"])
                score = _score_safely(keep, self.p.photo.rgb, plan.fps, size, still=plan.still)
                keep.clear()
                timings["score_s"] = round(time.perf_counter() - t_score, 4)
            manifest = {
                **self.base_manifest,
                "seed": plan.seed,
                "job_seed": self.p.seed,
                "variant": plan.index + 1,
                "plan": _plan_data(plan, facts),
                "rendered": rate.rendered(),
                "interpolated": rate.interpolated(),
                "video": {k: v for k, v in info.items() if k != "path"} | {"file": video.path.name},
                "score": score,
                "timings": timings,
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            }
            staged.append(stage_json(manifest, self.out / f"{name}.json"))
            if poster:
                staged.append(stage_jpeg(poster[0], self.out / f"{name}.jpg"))
        except BaseException:
            for item in (*staged, video):
                item.discard()
            raise
        self.fractions[plan.index] = 1.0
        recorded = _plan_data(plan, facts)
        clip = Clip(plan.index, plan.seed, video.path, staged[0].path, info["width"], info["height"],
                    info["frames"], plan.fps, recorded, timings, score, manifest)  # fmt: skip
        return _Finished(clip, [*staged, video])

    def publish(self, done: _Finished) -> Clip:
        """Give a finished variant's files their names, manifest first and the MP4 last: the
        MP4's name is what History and listings look for, so a clip and its manifest appear
        together. A crash between the renames leaves a lone manifest, which start-up
        recovery removes (studio.serve.retention)."""
        try:
            self.ctx.check_cancel()  # a take that finished while Cancel was pressed is not kept
            for item in done.files:
                item.commit()
        except BaseException as exc:
            done.discard()
            for item in done.files:  # those committed before a later one failed
                item.path.unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise write_failure(done.clip.path, exc, "video") from exc
            raise
        self.clips.append(done.clip)
        return done.clip

    def update(self, new: Clip | None) -> JobUpdate:
        n, done = len(self.p.plans), len(self.clips)
        msg = (
            f"Rendered {done} of {n} variants" if new else f"Rendering {n} variants ({done} done)…"
        )
        clips = sorted(self.clips, key=lambda c: c.index)
        return JobUpdate(sum(self.fractions) / n, msg, clips, new, seed=self.p.seed)

    def summary(self, started: float) -> dict[str, Any]:
        """The job's manifest.json: what every clip's manifest shares, and the clip list."""
        return {
            **self.base_manifest,
            "job_seed": self.p.seed,
            "clips": [
                {
                    "variant": c.index + 1,
                    "seed": c.seed,
                    "file": c.path.name,
                    "manifest": c.manifest.name,
                }
                for c in self.clips
            ],  # fmt: skip
            "timings": {
                "prepare_s": round(self.prepare_s, 4),
                "total_s": round(time.perf_counter() - started, 4),
            },
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }


def run_job(
    prepared: PreparedJob,
    out_dir: str | Path,
    settings: Settings,
    ctx: RenderContext | None = None,
) -> Iterator[JobUpdate]:
    """Render every variant, encode each to MP4 with its manifest, and stream updates.

    Variants of CPU backends render in parallel threads (OpenCV and ffmpeg release the
    GIL); model backends batch or sequence them themselves via render_many. Closing this
    generator (Cancel) stops the workers and keeps only the takes already published.
    """
    # 1. Set up the job folder and the writer that names, scores and publishes the clips.
    started = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    writer = _JobWriter(prepared, out, settings, ctx or RenderContext())
    yield JobUpdate(0.0, "Analysing the photo…", [], seed=prepared.seed, warnings=prepared.warnings)

    # 2. Analyse the photo once for all variants (matte, depth, plate; or load a model).
    t0 = time.perf_counter()
    scene = prepared.backend.prepare(
        prepared.photo.rgb, prepared.plans, writer.ctx, edits=prepared.edits
    )
    writer.prepare_s = time.perf_counter() - t0

    # 3. Render, encode, score and publish each variant, streaming each as it is done.
    parallel = prepared.backend.parallel_variants and settings.workers > 1
    if parallel and len(prepared.plans) > 1:
        yield from _render_in_threads(writer, scene, settings.workers)
    else:
        yield from _render_in_turn(writer, scene)

    # 4. Rank the takes and write the job's summary manifest.
    writer.clips.sort(key=lambda c: c.index)
    ranking, badges = _rank(writer.clips)
    manifest = write_json(writer.summary(started), out / "manifest.json")
    yield JobUpdate(
        1.0, f"Done: {len(writer.clips)} variants", writer.clips, None, True, manifest,
        prepared.seed, prepared.warnings, ranking, badges,
    )  # fmt: skip


def _render_in_threads(writer: _JobWriter, scene: Any, workers: int) -> Iterator[JobUpdate]:
    """Variants in a thread pool; each is published (and streamed) in this thread."""
    p, ctx = writer.p, writer.ctx

    def work(plan: VariantPlan) -> _Finished:
        return writer.finish(plan, p.backend.render(scene, plan, ctx), time.perf_counter())

    parallel = min(workers, len(p.plans))
    with parallel_section(parallel) as each:
        writer.encode_threads = each
        yield from _run_pool(writer, parallel, work)


def _run_pool(writer: _JobWriter, parallel: int, work) -> Iterator[JobUpdate]:
    p, ctx = writer.p, writer.ctx
    pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="variant")
    futures = [pool.submit(work, plan) for plan in p.plans]
    taken: set[Future] = set()
    try:
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
            for fut in finished:
                taken.add(fut)
                yield writer.update(writer.publish(fut.result()))  # re-raises a worker's error
            if not finished:
                yield writer.update(None)
    except BaseException:
        ctx.cancel.set()  # stop sibling variants promptly; their temp files are removed
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        for fut in futures:  # finished after we stopped listening: never published
            if fut not in taken and not fut.cancelled() and fut.exception() is None:
                fut.result().discard()


def _render_in_turn(writer: _JobWriter, scene: Any) -> Iterator[JobUpdate]:
    """Variants one after another, as the backend yields them (model backends batch them)."""
    p = writer.p
    t_start = time.perf_counter()
    try:
        for pos, rendered in p.backend.render_many(scene, p.plans, writer.ctx):
            done = writer.finish(
                p.plans[pos], rendered.frames, t_start, rendered.facts, rendered.audio
            )
            yield writer.update(writer.publish(done))
            t_start = time.perf_counter()
    except BaseException:
        writer.ctx.cancel.set()
        raise


class _PlanRate:
    """Brings a take to its plan's frame rate, and counts what was rendered and what was added.

    A backend that renders below the plan's rate says so in its facts ("fps", the rate its
    frames were made at); those frames are interpolated to the plan's rate with optical flow
    (studio.interpolate), keeping the take's duration. Other takes pass through, counted.
    """

    METHOD = "dis-optical-flow"

    def __init__(self, plan: VariantPlan, facts: dict[str, Any] | None) -> None:
        fps = (facts or {}).get("fps")
        told = isinstance(fps, (int, float)) and not isinstance(fps, bool)
        told = told and math.isfinite(fps) and fps > 0
        if fps is not None and not told:
            log.warning("backend reported a frame rate of %r; taking the plan's", fps)
        self.fps = fps if told else plan.fps
        self.to_fps = plan.fps
        self.raise_rate = told and fps < plan.fps
        self.frames_in = self.frames_out = 0

    def apply(self, frames, ctx: RenderContext) -> Iterator[np.ndarray]:
        def rendered():
            for frame in frames:
                self.frames_in += 1
                yield frame

        out = interpolate(rendered(), self.fps, self.to_fps) if self.raise_rate else rendered()
        for frame in out:
            if self.raise_rate:  # a long take's interpolation stops at Cancel too
                ctx.check_cancel()
            self.frames_out += 1
            yield frame

    def rendered(self) -> dict[str, Any]:
        """What the backend made: its frame rate and frame count."""
        return {"fps": self.fps, "frames": self.frames_in}

    def interpolated(self) -> dict[str, Any] | None:
        """What interpolation added to reach the plan's rate, or None when nothing was."""
        if not self.raise_rate:
            return None
        return {
            "method": self.METHOD,
            "from_fps": self.fps,
            "to_fps": self.to_fps,
            "frames_added": self.frames_out - self.frames_in,
        }


def _plan_data(plan: VariantPlan, facts: dict[str, Any] | None) -> dict[str, Any]:
    """The plan as the manifest records it, with the backend's render facts in its params."""
    data = plan.to_dict()
    if facts:
        data["params"]["rendered"] = dict(facts)
    return data


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

    scores = [ClipScore.from_dict(c.score) for c in clips]
    order = rank(scores)
    return [clips[i].index for i in order], {clips[i].index: b for i, b in badges(scores).items()}
