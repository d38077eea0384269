"""The registry of backends: the embedded engine always, model checkpoints when the catalog adds them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from studio.backends.base import Backend
from studio.errors import JobError


@dataclass(frozen=True)
class BackendInfo:
    id: str
    title: str
    description: str
    factory: Callable[[], Backend]


def _engine() -> Backend:
    from studio.backends.engine import EngineBackend
    from studio.settings import Settings

    # STUDIO_DEPTH: "auto" uses Depth Anything V2 when its weights are cached, else the heuristic.
    return EngineBackend(depth=Settings.from_env().depth)


_REGISTRY: dict[str, BackendInfo] = {
    "engine": BackendInfo(
        id="engine",
        title="Embedded motion engine (CPU)",
        description="Depth-layered parallax and ambient motion; no model weights, runs anywhere.",
        factory=_engine,
    )
}
_INSTANCES: dict[str, Backend] = {}


def register(info: BackendInfo) -> None:
    _REGISTRY[info.id] = info


# --- model checkpoints (issue 3): one backend per presets/models.yaml entry, registered on
# first use; reading the catalog needs only yaml, so torch is still not imported here.
_FAMILY_CLASSES = {
    "svd": ("studio.backends.svd", "SVDBackend"),
    "ltx": ("studio.backends.ltx", "LTXBackend"),
    "cogvideox": ("studio.backends.cogvideox", "CogVideoXBackend"),
    "wan": ("studio.backends.wan", "WanBackend"),
    "skyreels": ("studio.backends.skyreels", "SkyReelsBackend"),
}
_catalog_registered = False


def _checkpoint_factory(checkpoint_id: str) -> Callable[[], Backend]:
    def make() -> Backend:
        import importlib

        from studio.models import load_catalog

        ckpt = load_catalog()[checkpoint_id]
        module, name = _FAMILY_CLASSES[ckpt.family]
        return getattr(importlib.import_module(module), name)(ckpt)

    return make


def _register_catalog() -> None:
    global _catalog_registered
    if _catalog_registered:
        return
    from studio.models import describe, load_catalog

    for ckpt in load_catalog().values():
        if ckpt.id not in _REGISTRY:
            register(BackendInfo(ckpt.id, ckpt.name, describe(ckpt), _checkpoint_factory(ckpt.id)))
    _catalog_registered = True


# --- end model checkpoints


def list_backends() -> list[BackendInfo]:
    _register_catalog()
    return list(_REGISTRY.values())


def get_backend(backend_id: str) -> Backend:
    """The shared instance of a backend (backends keep their own caches)."""
    _register_catalog()
    if backend_id not in _REGISTRY:
        known = ", ".join(_REGISTRY)
        raise JobError(f"Unknown backend '{backend_id}'. Available: {known}.")
    if backend_id not in _INSTANCES:
        _INSTANCES[backend_id] = _REGISTRY[backend_id].factory()
    return _INSTANCES[backend_id]
