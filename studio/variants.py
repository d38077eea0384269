"""Plan N variants of one preset: seeds and jitter spread evenly, so four takes are worth comparing."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from studio.plan import Ambient, CameraMove, VariantPlan
from studio.presets import Preset


def _stratified(rng: np.random.Generator, n: int, lo: float, hi: float) -> list[float]:
    # One value from each of n equal slices, in shuffled order: four variants spread
    # across the range instead of clumping, which is what makes them worth comparing.
    if hi <= lo:
        return [lo] * n
    slots = rng.permutation(n)
    return [lo + (hi - lo) * (s + rng.uniform(0.15, 0.85)) / n for s in slots]


def phrasing_for(preset: Preset, seed: int, index: int) -> str:
    """The wording of take `index`: the preset's phrasings in turn, starting where the seed says.

    Consecutive takes get different phrasings (all of them when there are at least as many
    takes), and the same seed gives the same wording. It is chosen apart from the random
    draws of the camera jitter, so adding phrasings to a preset leaves its moves as they were.
    """
    phrasings = preset.phrasings
    return phrasings[(seed + index) % len(phrasings)]


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
    prompt: str | None = None,
    negative_prompt: str | None = None,
) -> list[VariantPlan]:
    """Pure: the N plans for one job. Same inputs, same plans.

    prompt and negative_prompt, when given, replace the preset's for every take; otherwise
    the takes cycle through the preset's phrasings (see phrasing_for).
    """
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
    negative = preset.negative_prompt if negative_prompt is None else negative_prompt
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
                prompt=prompt if prompt is not None else phrasing_for(preset, seed, i),
                negative_prompt=negative,
                params=dict(params or {}),
            )
        )
    return plans
