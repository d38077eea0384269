"""Which device a model runs on: the one asked for, else the best this machine has."""

from __future__ import annotations

import importlib.util
from typing import Any


def default_device() -> str:
    """The best device here: cuda (NVIDIA), mps (Apple silicon), else cpu (also without torch)."""
    if importlib.util.find_spec("torch") is None:
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def resolve_device(requested: str | None = None) -> str:
    """The device a job asked for ("cuda:1", "mps", "cpu"...), else this machine's default.

    The model loader and the job queue both ask here, so a job waits in line for the device
    its model really loads on.
    """
    return str(requested or default_device())


def torch_device(name: str) -> Any:
    """The torch.device that models for the device name are placed on.

    The one place a device name becomes a torch device, so the CPU tests can stand a CUDA
    name on the CPU and run the real placement code (offload hooks, VAE features) there.
    """
    import torch

    return torch.device(name)
