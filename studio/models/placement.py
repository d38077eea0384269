"""Where a loaded pipeline runs: its memory mode, the VAE and low-VRAM features it really has, its step cache."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from studio.errors import BackendError
from studio.models import device as devices

if TYPE_CHECKING:
    from studio.models.catalog import Checkpoint
    from studio.models.options import LoadOptions

log = logging.getLogger(__name__)

VAE_FEATURES = ("tiling", "slicing")
# What a refusal suggests instead: TaylorSeer needs no calibration, no batch layout and no
# block registry, and runs on every transformer family in the catalog (benchmarks/bench_gpu.py).
OTHER_CACHE = "use the taylorseer step cache instead."


def place(pipe: Any, ckpt: Checkpoint, options: LoadOptions) -> list[str]:
    """Move a fresh pipeline to its device in the chosen memory mode; the notes say what was enabled."""
    # 1. The memory mode.
    device = devices.torch_device(options.device)
    if options.offload == "model":
        pipe.enable_model_cpu_offload(device=device)
    elif options.offload == "sequential":
        pipe.enable_sequential_cpu_offload(device=device)
    elif options.offload == "group":
        # Leaf-level groups with a CUDA stream overlap transfers with compute: close to plain
        # speed at a fraction of the VRAM (diffusers' recommended setting). Streams need CUDA.
        pipe.enable_group_offload(
            onload_device=device, offload_type="leaf_level", use_stream=device.type == "cuda"
        )
    else:
        pipe.to(device)

    # 2. The low-VRAM features, whenever weights are offloaded: memory is short.
    notes: list[str] = []
    if options.offload != "none":
        vae = getattr(pipe, "vae", None)
        if vae is not None:
            notes += enable_vae_features(vae)
        if ckpt.low_vram.forward_chunking:
            notes += enable_forward_chunking(pipe)

    # 3. The step cache.
    if options.cache != "none":
        notes.append(enable_cache(pipe, ckpt, options.cache))
    return notes


def enable_vae_features(vae: Any) -> list[str]:
    """Turn on the VAE's tiling and slicing where its class implements them; notes for each.

    AutoencoderMixin gives every VAE enable_tiling() and enable_slicing(), but they raise
    NotImplementedError unless the class itself supports the feature (SVD's temporal decoder
    supports neither), so having the method says nothing: call it and take its word.
    """
    notes = []
    for feature in VAE_FEATURES:
        enable = getattr(vae, f"enable_{feature}", None)
        if not callable(enable):
            continue
        try:
            enable()
        except NotImplementedError:
            log.debug("%s has no VAE %s", type(vae).__name__, feature)
            continue
        notes.append(f"vae {feature}")
    return notes


def enable_forward_chunking(pipe: Any) -> list[str]:
    """Chunk the feed-forward layers of every component that implements it (SVD's UNet)."""
    notes = []
    for name, component in pipe.components.items():
        chunk = getattr(component, "enable_forward_chunking", None)
        if callable(chunk):
            chunk()
            notes.append(f"{name} forward chunking")
    if not notes:
        log.warning("no component of %s can chunk its feed-forward layers", type(pipe).__name__)
    return notes


def cache_targets(pipe: Any) -> list[tuple[str, Any]]:
    """(name, model) for every component that takes a step cache: the transformer, and
    transformer_2 in two-expert pipelines such as Wan 2.2 A14B."""
    from diffusers import CacheMixin

    return [(n, c) for n, c in pipe.components.items() if isinstance(c, CacheMixin)]


def enable_cache(pipe: Any, ckpt: Checkpoint, mode: str) -> str:
    """Put the step cache on every component that takes one; the note names them."""
    targets = cache_targets(pipe)
    if not targets:
        raise BackendError(f"{ckpt.name} does not support a step cache; set the cache to none.")
    for _, model in targets:
        # A fresh config per model: each hook keeps its own state in it.
        config = cache_config(pipe, ckpt, mode)
        try:
            model.enable_cache(config)
        except ValueError as exc:
            # First-block caching hooks the transformer's blocks by class, and diffusers
            # registers only some classes (not SkyReels-V2's or LTX-2's, in 0.42).
            if "not registered" not in str(exc):
                raise
            raise BackendError(
                f"{ckpt.name} does not support the {mode} step cache; {OTHER_CACHE}"
            ) from None
    return f"step cache {mode} on {', '.join(name for name, _ in targets)}"


def cache_config(pipe: Any, ckpt: Checkpoint, mode: str) -> Any:
    """The diffusers config of one step cache for one model of ckpt."""
    import diffusers

    if mode == "fbc":
        return diffusers.FirstBlockCacheConfig(
            threshold=float(ckpt.options.get("fbc_threshold", 0.05))
        )
    if mode == "taylorseer":
        return diffusers.TaylorSeerCacheConfig()
    if mode == "faster":
        if ckpt.cache_format is None:
            # FasterCache splits a batch of [unconditional, conditional] frames. LTX's
            # transformer returns packed tokens; Wan-style pipelines call it twice instead.
            raise BackendError(f"FasterCache does not fit {ckpt.name}; {OTHER_CACHE}")
        return diffusers.FasterCacheConfig(
            current_timestep_callback=lambda: pipe.current_timestep,
            tensor_format=ckpt.cache_format,
        )
    ratios = ckpt.options.get("mag_ratios")
    if not ratios:
        raise BackendError(
            f"MagCache needs calibrated mag_ratios for {ckpt.name} in presets/models.yaml; {OTHER_CACHE}"
        )
    return diffusers.MagCacheConfig(mag_ratios=ratios, num_inference_steps=ckpt.steps)
