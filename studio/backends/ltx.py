"""LTX-Video: photo + preset prompt -> clip; fast, sizes a multiple of 32, frames 8k+1."""

from __future__ import annotations

from typing import Any

from studio.backends.diffusion import DiffusionBackend, Shot
from studio.models import Loaded
from studio.plan import VariantPlan


class LTXBackend(DiffusionBackend):
    def pipeline_kwargs(
        self, loaded: Loaded, image: Any, plans: list[VariantPlan], shot: Shot
    ) -> dict[str, Any]:
        opts = self.checkpoint.options
        return {
            # The pipeline encodes image[i] for prompt i: one copy per variant.
            "image": [image] * len(plans),
            "prompt": [p.prompt for p in plans],
            "negative_prompt": [p.negative_prompt for p in plans],
            "height": shot.height,
            "width": shot.width,
            "num_frames": shot.frames,
            "frame_rate": self.checkpoint.fps,
            "guidance_scale": shot.guidance,
            "max_sequence_length": int(opts.get("max_sequence_length", 128)),
            "decode_timestep": float(opts.get("decode_timestep", 0.0)),
            "decode_noise_scale": opts.get("decode_noise_scale"),
        }


BACKEND = LTXBackend  # what studio.backends builds for family "ltx"
