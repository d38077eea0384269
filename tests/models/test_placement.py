"""Every catalog entry's real load path on a CUDA device name, run on the CPU.

Off CUDA the studio forces offload to "none", so the CPU tests never met the code a GPU user
runs first (SVD crashed there). Here only the device itself is faked: the manager is told
"cuda", torch.device("cuda") is stood on the CPU and the device claims bf16; everything else
(options, from_pretrained, offload hooks, VAE features, the backend's pipeline call) is real.
"""

from __future__ import annotations

import numpy as np
import pytest

from studio.backends import family_backend
from studio.backends.base import RenderContext
from studio.models import GIB, OFFLOAD_MODES, ModelManager, device
from studio.plan import VariantPlan
from tests.tiny_pipelines import FOR_CHECKPOINT as TINY
from tests.tiny_pipelines import tiny_catalog, tiny_folder

# What each VAE class implements, read in diffusers 0.42's source: the temporal decoder
# inherits enable_tiling/enable_slicing from AutoencoderMixin, which raise NotImplementedError.
VAE_SUPPORT = {
    "AutoencoderKLTemporalDecoder": set(),
    "AutoencoderKLLTXVideo": {"tiling", "slicing"},
    "AutoencoderKLLTX2Video": {"tiling", "slicing"},
    "AutoencoderKLCogVideoX": {"tiling", "slicing"},
    "AutoencoderKLWan": {"tiling", "slicing"},
    "AutoencoderKLHunyuanVideo15": {"tiling", "slicing"},
}
CATALOG = tiny_catalog()


@pytest.fixture
def fake_cuda(monkeypatch):
    """A CUDA device with bf16 that is really the CPU."""
    import torch

    real = device.torch_device
    monkeypatch.setattr(
        device, "torch_device", lambda name: real("cpu" if name.startswith("cuda") else name)
    )
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    rgb = np.zeros((64, 96, 3), np.uint8)
    rgb[..., 1] = np.linspace(0, 255, 96, dtype=np.uint8)[None]
    rgb[20:44, 30:60] = (230, 200, 40)
    return rgb


def _plan(ckpt_id: str, params: dict) -> VariantPlan:
    # SVD's tiny UNet is the slowest model here: two frames, one step are enough to run its hooks.
    frames, steps = (2, 1) if ckpt_id == "svd-xt" else (9, 2)
    return VariantPlan(index=0, seed=3, width=64, height=64, frames=frames, fps=8,
                       prompt="a photo of a product", negative_prompt="blurry",
                       params={**params, "steps": steps, "batch": 1})  # fmt: skip


def _hook(module, name: str):
    registry = getattr(module, "_diffusers_hook", None)
    return registry is not None and registry.get_hook(name) is not None


def _cuda_params(ckpt_id: str, mode: str) -> dict:
    params = {"device": "cuda", "model_path": str(tiny_folder(TINY[ckpt_id]))}
    if mode != CATALOG[ckpt_id].offload:  # the entry's own mode is what a GPU user gets unasked
        params["offload"] = mode
    return params


def test_every_catalog_entry_has_a_tiny_pipeline():
    assert set(TINY) == set(CATALOG)


@pytest.mark.parametrize("mode", OFFLOAD_MODES)
@pytest.mark.parametrize("ckpt_id", list(CATALOG))
def test_each_entry_loads_and_renders_on_cuda_in_each_memory_mode(fake_cuda, photo, ckpt_id, mode):
    ckpt = CATALOG[ckpt_id]
    manager = ModelManager(CATALOG, budget_bytes=8 * GIB)
    params = _cuda_params(ckpt_id, mode)
    loaded = manager.get(ckpt, params)
    pipe = loaded.pipe
    assert (loaded.options.device, loaded.options.offload, loaded.options.dtype) == (
        "cuda",
        mode,
        "bfloat16",
    )

    # Only the VAE features its class really implements, and only while weights are offloaded.
    offloaded = mode != "none"
    supported = VAE_SUPPORT[type(pipe.vae).__name__]
    assert {n.split()[1] for n in loaded.notes if n.startswith("vae ")} == (
        supported if offloaded else set()
    )
    for feature in ("tiling", "slicing"):
        assert getattr(pipe.vae, f"use_{feature}", False) is (offloaded and feature in supported)

    # The weights went where the memory mode puts them.
    denoiser = getattr(pipe, "transformer", None) or pipe.unet
    if mode == "model":
        assert hasattr(denoiser, "_hf_hook")  # moved to the GPU when called, back after
    elif mode == "group":
        assert any(_hook(m, "group_offloading") for m in denoiser.modules())
    elif mode == "sequential":
        assert {p.device.type for p in denoiser.parameters()} == {"meta"}
        # accelerate's sequential hooks cannot run with a CPU execution device (they put a
        # plain tensor back where a parameter was), so the render itself needs a GPU.
        return

    backend = family_backend(ckpt.family)(ckpt, models=manager)
    plan = _plan(ckpt_id, params)
    frames = backend.render(photo, plan, RenderContext())
    assert len(frames) == plan.frames and frames[0].shape == (64, 64, 3)
    assert all(np.isfinite(f).all() for f in frames)
    assert manager.loads == 1  # the render used the pipeline placed above


@pytest.mark.parametrize("mode", ["none", "model"])
def test_svd_offloaded_uses_the_low_vram_recipe(fake_cuda, photo, mode):
    ckpt = CATALOG["svd-xt"]
    manager = ModelManager(CATALOG, budget_bytes=8 * GIB)
    params = _cuda_params("svd-xt", mode)
    loaded = manager.get(ckpt, params)
    chunked = [m for m in loaded.pipe.unet.modules() if getattr(m, "_chunk_size", None)]
    backend = family_backend("svd")(ckpt, models=manager)
    plan = _plan("svd-xt", params)
    kwargs = backend.pipeline_kwargs(loaded, None, [plan], backend.shot(loaded, plan))
    if mode == "none":
        assert not chunked and kwargs["decode_chunk_size"] == 8
    else:
        assert chunked and "unet forward chunking" in loaded.notes
        assert kwargs["decode_chunk_size"] == ckpt.low_vram.decode_chunk_size == 2
