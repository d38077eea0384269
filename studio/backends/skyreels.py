"""SkyReels V2 image-to-video: photo + preset prompt -> clip (a Wan-style pipeline), frames 4k+1."""

from __future__ import annotations

from typing import Any

from studio.backends.diffusion import DiffusionBackend, Shot
from studio.errors import BackendError
from studio.models import Loaded
from studio.plan import VariantPlan


class SkyReelsBackend(DiffusionBackend):
    # Copied from studio.backends.wan.WanBackend.pipeline_kwargs
    def pipeline_kwargs(
        self, loaded: Loaded, image: Any, plans: list[VariantPlan], shot: Shot
    ) -> dict[str, Any]:
        try:
            import ftfy  # noqa: F401 - the prompt cleaning needs it
        except ImportError:
            raise BackendError(
                f"{self.checkpoint.name} needs the ftfy package: pip install ftfy."
            ) from None
        return {
            # One image is shared by every prompt of the batch (the pipeline repeats it).
            "image": image,
            "prompt": [p.prompt for p in plans],
            "negative_prompt": [p.negative_prompt for p in plans],
            "height": shot.height,
            "width": shot.width,
            "num_frames": shot.frames,
            "guidance_scale": shot.guidance,
            "max_sequence_length": int(self.checkpoint.options.get("max_sequence_length", 512)),
        }


BACKEND = SkyReelsBackend  # what studio.backends builds for family "skyreels"
