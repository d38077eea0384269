"""How a checkpoint loads: device, dtype, memory mode and step cache, and the choices for each."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.errors import BackendError
from studio.models.device import resolve_device

if TYPE_CHECKING:
    from studio.models.catalog import Checkpoint

# The choices, written once: the catalog, the CLI's flags and the checks below read them.
OFFLOAD_MODES = ("none", "model", "sequential", "group")
CACHE_MODES = ("none", "fbc", "taylorseer", "magcache", "faster")
DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}

# When a render runs out of GPU memory: the mode that needs less VRAM than the one in use.
LESS_VRAM = {"none": "model", "model": "group", "group": "sequential"}


@dataclass(frozen=True)
class LoadOptions:
    """How to load one checkpoint; part of the cache key."""

    device: str
    dtype: str  # "float32", "float16", "bfloat16"
    offload: str = "none"
    cache: str = "none"
    model_path: str | None = None


def resolve_options(ckpt: Checkpoint, params: dict[str, Any]) -> LoadOptions:
    """Device, dtype and memory mode from job params, else chosen for this machine."""
    import torch

    device = resolve_device(params.get("device"))
    if device.startswith("cuda"):
        dtype = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    elif device == "mps":
        dtype = "float16"
    else:
        dtype = "float32"
    if params.get("dtype"):
        want = str(params["dtype"])
        dtype = DTYPES.get(want, want)
        if dtype not in DTYPES.values():
            raise BackendError(f"dtype must be one of {', '.join(DTYPES)}; got '{want}'.")
    offload = str(params.get("offload") or (ckpt.offload if device.startswith("cuda") else "none"))
    if offload not in OFFLOAD_MODES:
        raise BackendError(f"Offload must be one of {', '.join(OFFLOAD_MODES)}; got '{offload}'.")
    if not device.startswith("cuda"):
        offload = "none"  # offloading moves weights between CPU and an accelerator
    cache = str(params.get("cache") or "none")
    if cache not in CACHE_MODES:
        raise BackendError(f"Step cache must be one of {', '.join(CACHE_MODES)}; got '{cache}'.")
    path = params.get("model_path")
    return LoadOptions(
        device, dtype, offload, cache, str(Path(path).expanduser()) if path else None
    )
