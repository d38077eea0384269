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

    return EngineBackend()


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


def list_backends() -> list[BackendInfo]:
    return list(_REGISTRY.values())


def get_backend(backend_id: str) -> Backend:
    """The shared instance of a backend (backends keep their own caches)."""
    if backend_id not in _REGISTRY:
        known = ", ".join(_REGISTRY)
        raise JobError(f"Unknown backend '{backend_id}'. Available: {known}.")
    if backend_id not in _INSTANCES:
        _INSTANCES[backend_id] = _REGISTRY[backend_id].factory()
    return _INSTANCES[backend_id]
