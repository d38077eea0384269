"""CogVideoX image-to-video: photo + preset prompt -> clip at the transformer's trained size."""

from __future__ import annotations

from typing import Any

from studio.backends.diffusion import DiffusionBackend, Shot
from studio.models import Loaded
from studio.plan import VariantPlan


class CogVideoXBackend(DiffusionBackend):
    def shot(self, loaded: Loaded, plan: VariantPlan) -> Shot:
        shot = super().shot(loaded, plan)
        if not self.checkpoint.fixed_size:
            return shot
        # Learned positional embeddings only exist for the trained size and length; read
        # them from the loaded transformer so any CogVideoX-I2V folder renders correctly.
        cfg = loaded.pipe.transformer.config
        scale = loaded.pipe.vae_scale_factor_spatial
        return Shot(
            cfg.sample_width * scale,
            cfg.sample_height * scale,
            cfg.sample_frames,
            shot.steps,
            shot.guidance,
        )

    def pipeline_kwargs(
        self, loaded: Loaded, image: Any, plans: list[VariantPlan], shot: Shot
    ) -> dict[str, Any]:
        return {
            "image": [image] * len(plans),
            "prompt": [p.prompt for p in plans],
            "negative_prompt": [p.negative_prompt for p in plans],
            "height": shot.height,
            "width": shot.width,
            "num_frames": shot.frames,
            "guidance_scale": shot.guidance,
            "max_sequence_length": int(loaded.pipe.transformer.config.max_text_seq_length),
        }


BACKEND = CogVideoXBackend  # what studio.backends builds for family "cogvideox"
