"""CogVideoX image-to-video: photo + preset prompt -> clip at the size the model accepts.

CogVideoX 5B I2V only runs at its trained size (learned positional embeddings); CogVideoX 1.5
I2V takes any size with a short side of options.short_side and a long side up to
options.max_long_side (its card's rule).
"""

from __future__ import annotations

from typing import Any

from studio.backends.diffusion import DiffusionBackend, Shot
from studio.models import Loaded
from studio.plan import VariantPlan


class CogVideoXBackend(DiffusionBackend):
    def shot(self, loaded: Loaded, plan: VariantPlan) -> Shot:
        shot = super().shot(loaded, plan)
        opts = self.checkpoint.options
        if "short_side" in opts:
            width, height = sized_by_short_side(
                plan.width, plan.height, int(opts["short_side"]),
                int(opts.get("max_long_side", 10**6)), self.checkpoint.multiple,
            )  # fmt: skip
            return Shot(width, height, shot.frames, shot.steps, shot.guidance)
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


def sized_by_short_side(
    width: int, height: int, short: int, max_long: int, multiple: int
) -> tuple[int, int]:
    """The plan's aspect with its short side exactly short and its long side rounded to
    multiple, at least short and at most max_long (a wider aspect is cropped to fit)."""
    landscape = width >= height
    long = max(width, height) * short / min(width, height)
    long = min(max_long, max(short, round(long / multiple) * multiple))
    return (long, short) if landscape else (short, long)


BACKEND = CogVideoXBackend  # what studio.backends builds for family "cogvideox"
