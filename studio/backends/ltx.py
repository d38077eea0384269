"""LTX-Video: photo + preset prompt -> clip; fast, sizes a multiple of 32, frames 8k+1.

Two diffusers pipelines drive it: LTXConditionPipeline (0.9.5 and later, where the photo is one
condition on frame 0) and LTXImageToVideoPipeline (0.9.0/0.9.1, one photo per prompt).
"""

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
        # LTXConditionPipeline reads a list of images as several keyframe conditions, so the
        # batch shares one; LTXImageToVideoPipeline encodes image[i] for prompt i.
        condition = self.checkpoint.pipeline == "LTXConditionPipeline"
        return {
            "image": image if condition else [image] * len(plans),
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
