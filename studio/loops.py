"""Looping a take: which loop each plan gets, and the boomerang and cross-fade made from any frames.

A seamless loop from the embedded engine needs nothing here: its renderer makes every motion
periodic (studio.motion), so its frames already flow from the last into the first. Any other
backend (a model's take) cannot be asked for periodic motion, so its seamless loop is made
after rendering by cross-fading the take's end into its start. A boomerang plays the take
forwards and then backwards, for every backend alike.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import replace

import cv2
import numpy as np

from studio.plan import VariantPlan

# Backends whose renderer makes a plan's motion periodic when it asks for a seamless loop.
PERIODIC_BACKENDS = frozenset({"engine"})
CROSSFADE_S = 0.5  # the cross-fade's length, at most a third of the take


def plan_loop(loop: str | None, backend_id: str) -> str | None:
    """The loop a plan carries for a job's loop on a backend (see studio.plan.PLAN_LOOPS)."""
    if loop == "seamless" and backend_id not in PERIODIC_BACKENDS:
        return "crossfade"
    return loop


def with_loop(plans: list[VariantPlan], loop: str | None, backend_id: str) -> list[VariantPlan]:
    """The plans with the job's loop on each (unchanged when the job asks for none)."""
    carried = plan_loop(loop, backend_id)
    if carried is None:
        return plans
    return [replace(plan, loop=carried) for plan in plans]


def loop_frames(frames: Iterable[np.ndarray], plan: VariantPlan) -> Iterable[np.ndarray]:
    """The frames of the clip to encode for a rendered take, looped as its plan says."""
    if plan.loop == "boomerang":
        return boomerang(frames)
    if plan.loop == "crossfade":
        return crossfade_loop(frames, crossfade_length(plan.frames, plan.fps))
    return frames  # no loop, or a seamless loop the renderer already made


def boomerang(frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """Frames 0..F-1, then F-2..1: forwards and back, with no end frame shown twice in a row
    (neither at the turn nor where the clip starts over)."""
    kept: list[np.ndarray] = []
    for frame in frames:
        # A copy: a backend may hand out the same buffer for every frame.
        kept.append(np.array(frame, copy=True))
        yield frame
    for frame in reversed(kept[1:-1]):
        yield frame


def crossfade_length(frames: int, fps: float) -> int:
    """How many frames a cross-faded loop of a take blends: about CROSSFADE_S seconds, at most
    a third of the take (so the blend never covers its middle), 0 for a take too short."""
    return max(0, min(round(CROSSFADE_S * fps), frames // 3))


def crossfade_loop(frames: Iterable[np.ndarray], k: int) -> Iterator[np.ndarray]:
    """A seamless loop from a take whose end does not meet its start: its last k frames are
    cross-faded into its first k, so the clip is k frames shorter.

    The clip starts at frame k (a clean frame, which makes a better first impression and
    poster than a blend) and runs to frame F-k-1, then blends frame F-k+j into frame j for
    j = 0..k-1, the start's share rising evenly from 1/(k+1) to k/(k+1); the frame after the
    last blend, mostly frame k-1, is frame k again. Only the first k frames are held back.
    """
    head: list[np.ndarray] = []
    tail: deque[np.ndarray] = deque()
    for frame in frames:
        if k <= 0:
            yield frame
        elif len(head) < k:
            head.append(np.array(frame, copy=True))
        else:
            tail.append(frame)
            if len(tail) > k:
                yield tail.popleft()
    if k <= 0:
        return
    if len(tail) < k:  # shorter than 2k frames: too short to blend, play it as it came
        yield from head
        yield from tail
        return
    for j, (end, start) in enumerate(zip(tail, head, strict=True)):
        w = (j + 1) / (k + 1)
        yield cv2.addWeighted(end, 1.0 - w, start, w, 0.0)
