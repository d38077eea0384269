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
    device = resolve_device(params.get("device"))
    if params.get("dtype"):
        want = str(params["dtype"])
        dtype = DTYPES.get(want, want)
        if dtype not in DTYPES.values():
            raise BackendError(f"dtype must be one of {', '.join(DTYPES)}; got '{want}'.")
    else:
        dtype = compute_dtype(device)
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


def compute_dtype(device: str) -> str:
    """The dtype most components run in on a device: bf16 where CUDA has it, else fp16; fp32 on the CPU."""
    if device.startswith("cuda"):
        import torch

        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    return "float16" if device == "mps" else "float32"


def dtype_argument(ckpt: Checkpoint, dtype: str) -> Any:
    """from_pretrained's dtype: one torch dtype, or one per component where the catalog pins some.

    diffusers loads each component in dtype[name], else dtype["default"] (Wan keeps its VAE
    and CLIP image encoder in fp32 while the transformer runs in bf16).
    """
    import torch

    compute = getattr(torch, dtype)
    if not ckpt.dtypes:
        return compute
    pinned = {name: getattr(torch, DTYPES[short]) for name, short in ckpt.dtypes.items()}
    return {**pinned, "default": compute}
