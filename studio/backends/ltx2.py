"""LTX-2 image-to-video: photo + preset prompt -> clip with its sound; sizes a multiple of 32, frames 8k+1.

LTX2ImageToVideoPipeline denoises video and audio latents together and returns both; the
sound travels with the frames (Rendered.audio) and is muxed into the clip's MP4.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from studio.audio import Audio
from studio.backends.diffusion import DiffusionBackend, Shot
from studio.errors import BackendError
from studio.models import Loaded
from studio.plan import VariantPlan

# Catalog options handed to the pipeline as they are (the LTX-2.0 settings that differ from
# the pipeline's LTX-2.5 defaults, for example).
PASS_THROUGH = (
    "decode_timestep",
    "decode_noise_scale",
    "stg_scale",
    "modality_scale",
    "guidance_rescale",
    "audio_guidance_scale",
    "spatio_temporal_guidance_blocks",
    "use_cross_timestep",
)


class LTX2Backend(DiffusionBackend):
    def pipeline_kwargs(
        self, loaded: Loaded, image: Any, plans: list[VariantPlan], shot: Shot
    ) -> dict[str, Any]:
        opts = self.checkpoint.options
        kwargs = {
            # One image per prompt: with one generator per variant the pipeline encodes image[i].
            "image": [self.conditioning_image(loaded, image)] * len(plans),
            "image_crf": 0,  # already re-compressed above, once for the batch
            "prompt": [p.prompt for p in plans],
            "negative_prompt": [p.negative_prompt for p in plans],
            "height": shot.height,
            "width": shot.width,
            "num_frames": shot.frames,
            "frame_rate": float(self.checkpoint.fps),
            "guidance_scale": shot.guidance,
            "max_sequence_length": int(opts.get("max_sequence_length", 1024)),
        }
        kwargs.update({key: opts[key] for key in PASS_THROUGH if key in opts})
        return kwargs

    def conditioning_image(self, loaded: Loaded, image: Any) -> Any:
        """The photo re-compressed as H.264 at the model's CRF, as LTX-2 saw images in training.

        The pipeline does this itself only for a single image; a batch passes a list, so the
        studio does it here with the pipeline's own function and CRF.
        """
        from diffusers.pipelines.ltx2.utils import (
            apply_image_conditioning_crf,
            resolve_default_image_crf,
        )
        from PIL import Image

        crf = self.checkpoint.options.get("image_crf")
        if crf is None:
            crf = resolve_default_image_crf(loaded.pipe.text_encoder)
        if not crf:
            return image
        try:
            import av  # noqa: F401 - the re-compression runs through PyAV
        except ImportError:
            raise BackendError(
                f"{self.checkpoint.name} needs the av package: pip install av."
            ) from None
        return Image.fromarray(
            apply_image_conditioning_crf(np.asarray(image.convert("RGB")), int(crf))
        )

    def results(
        self, loaded: Loaded, output: Any, plans: list[VariantPlan]
    ) -> list[tuple[np.ndarray, Audio | None]]:
        rate = int(loaded.pipe.vocoder.config.output_sampling_rate)
        return [
            (np.asarray(output.frames[i]), Audio.from_model(output.audio[i], rate))
            for i in range(len(plans))
        ]


BACKEND = LTX2Backend  # what studio.backends builds for family "ltx2"
