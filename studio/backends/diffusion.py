"""What every diffusers-backed backend shares: sizing, timing, batching, progress, cancel, OOM and frame fitting.

Each pipeline family (svd.py, ltx.py, ...) only says how a photo and its plans become
keyword arguments for its pipeline call; everything else lives here, once.

A model renders the plan's duration at its own frame rate (the catalog's fps) and says so in
its facts ("fps"); a take below the plan's rate is interpolated to it afterwards
(studio.clips, studio.interpolate), one above it keeps the frames nearest the plan's times.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import math
from abc import abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np

from studio.backends.base import Backend, RenderContext, Rendered
from studio.errors import Cancelled, OutOfMemory
from studio.interpolate import output_count
from studio.models import (
    LESS_VRAM,
    Checkpoint,
    FrameRule,
    Loaded,
    ModelManager,
    get_manager,
    is_oom,
    require_model_packages,
)
from studio.plan import VariantPlan

if TYPE_CHECKING:
    from studio.audio import Audio

log = logging.getLogger(__name__)

# Rough activation memory per rendered pixel-frame of one variant, in bytes; only used to
# decide whether variants can share one batched call (a wrong guess costs one retry).
ACTIVATION_BYTES_PER_PIXEL_FRAME = 256


class _Interrupted(Exception):
    """Raised from the step callback when the user pressed Cancel."""


@dataclass(frozen=True)
class Shot:
    """What the model is actually asked for: its size and frame count, and the plan's."""

    width: int
    height: int
    frames: int
    steps: int
    guidance: float


def motion_amount(plan: VariantPlan) -> float:
    """0..1: how much the plan moves (the camera or the strongest ambient motion)."""
    return float(max([plan.camera.strength, *(a.strength for a in plan.ambient)], default=0.0))


def lerp(span: tuple[float, float], t: float) -> float:
    return span[0] + (span[1] - span[0]) * min(1.0, max(0.0, t))


def crop_to_aspect(image: np.ndarray, width: int, height: int):
    """Centre-crop an RGB array to width:height and resize it to exactly that size (a PIL image)."""
    from PIL import Image

    h, w = image.shape[:2]
    target = width / height
    if w / h > target:
        cw = max(1, round(h * target))
        x = (w - cw) // 2
        image = image[:, x : x + cw]
    else:
        ch = max(1, round(w / target))
        y = (h - ch) // 2
        image = image[y : y + ch]
    return Image.fromarray(np.ascontiguousarray(image)).resize(
        (width, height), Image.Resampling.LANCZOS
    )


def native_frames(rule: FrameRule, plan: VariantPlan, fps: float) -> int:
    """The model's frame count for the plan's duration at the model's rate fps.

    The valid count nearest to plan.frames * fps / plan.fps, but at least two frames where
    the rule allows (one frame does not move). A plan longer than the model can render gets
    the model's longest take, and so a shorter clip.
    """
    n = rule.snap(plan.frames * fps / plan.fps)
    if n < 2 and n + rule.step <= rule.max:
        n += rule.step
    return n


def kept_frames(count: int, plan: VariantPlan, fps: float) -> int:
    """How many of a take's count frames at fps the clip keeps: those within the plan's duration.

    The frame rule may round the model's count up past the plan's duration; the frames after
    it are cut, so a plan the model can cover gets exactly its length.
    """
    return max(1, min(count, math.ceil(Fraction(plan.frames) * _rate(fps) / plan.fps)))


def fit_frames(video: np.ndarray, plan: VariantPlan, fps: float) -> list[np.ndarray]:
    """Model output (F, H, W, 3) floats 0..1 at fps -> uint8 frames at plan.width x plan.height.

    Space: resized (the aspect already matches, up to rounding to the model's multiple).
    Time: never blended. Frames past the plan's duration are cut (kept_frames). At or below
    the plan's rate each remaining frame is kept (the clip interpolates them to the plan's
    rate); above it, the frame nearest each of the plan's times k / plan.fps is kept, so the
    take plays at its own speed either way.
    """
    import cv2

    video = np.asarray(video, dtype=np.float32)
    count = kept_frames(video.shape[0], plan, fps)
    video = video[:count]
    if fps > plan.fps:
        step = _rate(fps) / plan.fps  # model frames per plan frame
        times = range(output_count(count, fps, plan.fps))
        video = video[[min(count - 1, math.floor(k * step + Fraction(1, 2))) for k in times]]
    out = []
    for frame in video:
        u8 = np.clip(frame * 255.0 + 0.5, 0, 255).astype(np.uint8)
        if u8.shape[:2] != (plan.height, plan.width):
            shrink = u8.shape[0] * u8.shape[1] > plan.height * plan.width
            u8 = cv2.resize(u8, (plan.width, plan.height),
                            interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)  # fmt: skip
        out.append(np.ascontiguousarray(u8))
    return out


def _rate(fps: float) -> Fraction:
    return Fraction(fps).limit_denominator(1001)  # as studio.interpolate reads a rate


class DiffusionBackend(Backend):
    """A backend that renders with one catalog checkpoint through the model manager."""

    parallel_variants = False

    def __init__(self, checkpoint: Checkpoint, models: ModelManager | None = None):
        # Said when the job is checked, before a job folder exists or anyone waits in line.
        require_model_packages()
        self.checkpoint = checkpoint
        self.id = checkpoint.id
        self._models = models  # None: the process-wide manager

    @property
    def models(self) -> ModelManager:
        return self._models or get_manager()

    # -- what each family file provides -----------------------------------------------

    @abstractmethod
    def pipeline_kwargs(
        self, loaded: Loaded, image: Any, plans: list[VariantPlan], shot: Shot
    ) -> dict[str, Any]:
        """Keyword arguments for one pipeline call rendering len(plans) variants of image."""

    def shot(self, loaded: Loaded, plan: VariantPlan) -> Shot:
        """The size and frame count the model renders for a plan (families may override).

        The frame count covers the plan's duration at the checkpoint's own rate.
        """
        ckpt = self.checkpoint
        width, height = ckpt.render_size(plan.width, plan.height)
        steps = int(plan.params.get("steps") or ckpt.steps)
        guidance = float(plan.params.get("guidance") or ckpt.guidance)
        return Shot(width, height, native_frames(ckpt.frames, plan, ckpt.fps), steps, guidance)

    def results(
        self, loaded: Loaded, output: Any, plans: list[VariantPlan]
    ) -> list[tuple[np.ndarray, Audio | None]]:
        """(video (F, H, W, 3) floats 0..1, sound or None) per plan, from one pipeline output.

        Families whose pipelines return sound with the video (LTX-2) override this.
        """
        return [(np.asarray(output.frames[i]), None) for i in range(len(plans))]

    # -- the shared machinery ---------------------------------------------------------

    def prepare(
        self,
        image: np.ndarray,
        plans: list[VariantPlan],
        ctx: RenderContext,
        edits: tuple = (),  # subject corrections: the model animates the whole photo
    ) -> object:
        return image

    def render(self, prepared: object, plan: VariantPlan, ctx: RenderContext):
        for _, rendered in self.render_many(prepared, [plan], ctx):
            return rendered.frames
        return []

    def render_many(
        self, prepared: object, plans: list[VariantPlan], ctx: RenderContext
    ) -> Iterator[tuple[int, Rendered]]:
        if not plans:
            return
        manager = self.models
        loaded = manager.get(self.checkpoint, plans[0].params)
        shot = self.shot(loaded, plans[0])
        if shot.frames / self.checkpoint.fps < plans[0].duration - 1 / plans[0].fps:
            log.warning("%s renders at most %d frames at %d fps: the clip is shorter than %.2f s",
                        self.checkpoint.name, shot.frames, self.checkpoint.fps, plans[0].duration)  # fmt: skip
        image = crop_to_aspect(np.asarray(prepared), shot.width, shot.height)
        batch = self._batch_size(loaded, shot, len(plans), plans[0].params)
        pos = 0
        while pos < len(plans):
            group = list(range(pos, min(len(plans), pos + batch)))
            ctx.check_cancel()
            try:
                takes = self._call(loaded, image, [plans[i] for i in group], shot, ctx)
            except OutOfMemory:
                if batch == 1:
                    raise
                # Memory was freed; the manager reloads and we go on one variant at a time.
                log.warning("batch of %d ran out of memory; rendering one at a time", batch)
                batch = 1
                loaded = manager.get(self.checkpoint, plans[0].params)
                continue
            for i, (video, audio) in zip(group, takes, strict=True):
                plan, fps = plans[i], self.checkpoint.fps
                facts = {
                    "checkpoint": self.checkpoint.id,
                    "width": int(video.shape[2]),
                    "height": int(video.shape[1]),
                    "frames": int(video.shape[0]),
                    "fps": fps,  # below the plan's rate, the clip interpolates up to it
                    "steps": shot.steps,
                    "device": loaded.options.device,
                    "dtype": loaded.options.dtype,
                }
                if audio is not None:
                    # The model's own length; the clip's track is cut or padded to the frames'.
                    facts["audio"] = {"rate": audio.rate, "channels": audio.channels,
                                      "seconds": round(audio.seconds, 3)}  # fmt: skip
                    # The clip lasts as long as the take's kept frames at the plan's rate.
                    kept = kept_frames(video.shape[0], plan, fps)
                    audio = audio.fitted(output_count(kept, fps, plan.fps) / plan.fps)
                yield i, Rendered(fit_frames(video, plan, fps), facts, audio)
            pos += len(group)

    def _batch_size(self, loaded: Loaded, shot: Shot, n: int, params: dict[str, Any]) -> int:
        if params.get("batch"):
            return max(1, min(n, int(params["batch"])))
        per_variant = shot.width * shot.height * shot.frames * ACTIVATION_BYTES_PER_PIXEL_FRAME
        free = self.models.free_bytes(loaded.options.device)
        return max(1, min(n, int(free // max(1, per_variant))))

    def _call(
        self, loaded: Loaded, image: Any, plans: list[VariantPlan], shot: Shot, ctx: RenderContext
    ) -> list[tuple[np.ndarray, Audio | None]]:
        import torch

        kwargs = self.pipeline_kwargs(loaded, image, plans, shot)
        # One generator per variant, seeded by its plan: each take is reproducible on its own.
        kwargs["generator"] = [torch.Generator("cpu").manual_seed(int(p.seed)) for p in plans]
        kwargs.setdefault("num_inference_steps", shot.steps)
        kwargs["output_type"] = "np"

        def on_step_end(pipe, step: int, timestep, callback_kwargs):
            for p in plans:
                ctx.report(p.index, 0.95 * (step + 1) / shot.steps)
            if ctx.cancel.is_set():
                raise _Interrupted
            return callback_kwargs

        try:
            with torch.inference_mode(), _step_reports(loaded.pipe, kwargs, on_step_end):
                takes = self.results(loaded, loaded.pipe(**kwargs), plans)
        except _Interrupted:
            raise Cancelled("Generation was cancelled.") from None
        except Exception as exc:
            if not is_oom(exc):
                raise
            self.models.evict(loaded.key)
            raise OutOfMemory(self._oom_advice(loaded, shot, len(plans))) from None
        finally:
            kwargs.clear()
        ctx.check_cancel()
        return takes

    def _oom_advice(self, loaded: Loaded, shot: Shot, batch: int) -> str:
        mode = loaded.options.offload
        nxt = LESS_VRAM.get(mode)
        change = f"set offload to '{nxt}'" if nxt else "lower the frame count"
        return (
            f"{self.checkpoint.name} ran out of GPU memory at {shot.width}x{shot.height}, {shot.frames} frames"
            f" (offload '{mode}'): {change}, use fewer frames or a smaller size, then try again."
        )


@contextlib.contextmanager
def _step_reports(pipe: Any, kwargs: dict[str, Any], on_step_end: Callable[..., Any]):
    """Call on_step_end after every denoising step of the pipeline call made inside.

    Through the pipeline's callback_on_step_end where it takes one; otherwise (HunyuanVideo
    1.5 has none) by wrapping its scheduler's step for the length of the call, since every
    denoising loop steps the scheduler once per step.
    """
    if "callback_on_step_end" in inspect.signature(type(pipe).__call__).parameters:
        kwargs["callback_on_step_end"] = on_step_end
        yield
        return
    scheduler, real_step = pipe.scheduler, pipe.scheduler.step
    steps = [0]

    def step(*args, **kw):
        out = real_step(*args, **kw)
        on_step_end(pipe, steps[0], None, {})
        steps[0] += 1
        return out

    scheduler.step = step  # an instance attribute: deleting it brings back the class's method
    try:
        yield
    finally:
        del scheduler.step
