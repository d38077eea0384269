"""HunyuanVideo 1.5 image-to-video: photo + preset prompt -> clip, frames 4k+1.

The pipeline picks its own size: the bucket nearest the photo's aspect at the transformer's
target_size. Guidance is not a call argument but the pipeline's guider (pipe.guider).
"""

from __future__ import annotations

from typing import Any

from studio.backends.diffusion import DiffusionBackend, Shot
from studio.models import Loaded
from studio.plan import VariantPlan


class HunyuanVideo15Backend(DiffusionBackend):
    def shot(self, loaded: Loaded, plan: VariantPlan) -> Shot:
        shot = super().shot(loaded, plan)
        pipe = loaded.pipe
        # The pipeline sizes the video from the image it is given; the photo is cropped to the
        # bucket of the plan's aspect first, so what it picks is this size again.
        height, width = pipe.video_processor.calculate_default_height_width(
            height=plan.height, width=plan.width, target_size=pipe.target_size
        )
        return Shot(int(width), int(height), shot.frames, shot.steps, shot.guidance)

    def pipeline_kwargs(
        self, loaded: Loaded, image: Any, plans: list[VariantPlan], shot: Shot
    ) -> dict[str, Any]:
        pipe = loaded.pipe
        if pipe.guider.guidance_scale != shot.guidance:
            pipe.guider = pipe.guider.new(guidance_scale=shot.guidance)
        return {
            "image": image,  # one photo shared by every prompt of the call
            "prompt": [p.prompt for p in plans],
            "negative_prompt": [p.negative_prompt for p in plans],
            "num_frames": shot.frames,
        }

    def _batch_size(self, loaded: Loaded, shot: Shot, n: int, params: dict[str, Any]) -> int:
        # One variant per call: diffusers 0.42's AutoencoderKLHunyuanVideo15 mid-block
        # attention cannot decode a batch of two or more (its causal mask does not broadcast).
        return 1


BACKEND = HunyuanVideo15Backend  # what studio.backends builds for family "hunyuan15"
