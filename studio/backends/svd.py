"""Stable Video Diffusion: photo -> clip with no text prompt; motion strength sets the motion bucket."""

from __future__ import annotations

from typing import Any

from studio.backends.diffusion import DiffusionBackend, Shot, lerp, motion_amount
from studio.models import Loaded
from studio.plan import VariantPlan


class SVDBackend(DiffusionBackend):
    def pipeline_kwargs(
        self, loaded: Loaded, image: Any, plans: list[VariantPlan], shot: Shot
    ) -> dict[str, Any]:
        ckpt = self.checkpoint
        # SVD conditions on one motion amount per call, so a batch shares the first plan's;
        # variants still differ by seed.
        motion = motion_amount(plans[0])
        return {
            "image": image,
            "height": shot.height,
            "width": shot.width,
            "num_frames": shot.frames,
            "num_videos_per_prompt": len(plans),
            "fps": ckpt.fps,  # the frame rate SVD was conditioned on, not the clip's
            "motion_bucket_id": int(
                round(lerp(ckpt.strength.get("motion_bucket_id", (127, 127)), motion))
            ),
            "noise_aug_strength": lerp(
                ckpt.strength.get("noise_aug_strength", (0.02, 0.02)), motion
            ),
            "min_guidance_scale": 1.0,
            "max_guidance_scale": shot.guidance,
            "decode_chunk_size": self.decode_chunk_size(loaded, plans[0]),
        }

    def decode_chunk_size(self, loaded: Loaded, plan: VariantPlan) -> int:
        """Frames the VAE decodes at once: the plan's, else the low-VRAM recipe's while weights are
        offloaded (fewer frames, less memory, slight flicker), else the catalog's."""
        ckpt = self.checkpoint
        low = ckpt.low_vram.decode_chunk_size if loaded.options.offload != "none" else None
        return int(
            plan.params.get("decode_chunk_size") or low or ckpt.options.get("decode_chunk_size", 8)
        )

    def _batch_size(self, loaded: Loaded, shot: Shot, n: int, params: dict[str, Any]) -> int:
        # Variants with different motion amounts cannot share a call; the plans of one job
        # usually differ, so batch only when asked to.
        return max(1, min(n, int(params.get("batch") or 1)))


BACKEND = SVDBackend  # what studio.backends builds for family "svd"
