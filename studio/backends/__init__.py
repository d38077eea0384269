"""The backends a studio offers: the embedded engine, one per catalog checkpoint, and any added.

A Backends registry is built from the studio's settings (and a model manager): it lists the
backends in picker order and builds each one once. registry(settings) keeps one per settings,
so the app, the CLI and the jobs they prepare share their backends and the engine's depth.
Reading the catalog needs only yaml: torch is not imported until a model backend renders.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass

from studio.backends.base import Backend
from studio.errors import JobError
from studio.models import Checkpoint, ModelManager, describe, get_manager
from studio.settings import Settings


@dataclass(frozen=True)
class BackendInfo:
    """What the pickers and listings show for a backend, and how to build it."""

    id: str
    title: str
    description: str
    factory: Callable[[], Backend]


ENGINE_TITLE = "Embedded motion engine (CPU)"
ENGINE_DESCRIPTION = (
    "Depth-based parallax, camera moves and ambient motion computed on the CPU; "
    "fast, deterministic and needs no downloads."
)

# Backends added in code (tests, plugins): every registry offers them after its own.
_added: dict[str, BackendInfo] = {}
_added_lock = threading.Lock()


def register(info: BackendInfo) -> None:
    """Offer one more backend in every registry (a registry builds it on first use)."""
    with _added_lock:
        _added[info.id] = info


def unregister(backend_id: str) -> None:
    """Withdraw a backend added with register()."""
    with _added_lock:
        _added.pop(backend_id, None)


def family_backend(family: str) -> type[Backend]:
    """The backend class of a pipeline family: studio/backends/<family>.py names it BACKEND.

    The families themselves are listed once, in studio.models.catalog.FAMILIES, which the
    catalog checks every entry against.
    """
    return importlib.import_module(f"studio.backends.{family}").BACKEND


class Backends:
    """The backends one studio offers, built from its settings; each is built once, when used."""

    def __init__(self, settings: Settings, manager: ModelManager | None = None):
        self.settings = settings
        # None: the process-wide manager, looked up when a model is needed.
        self.manager = manager
        self._own: list[BackendInfo] | None = None
        self._instances: dict[BackendInfo, Backend] = {}
        self._lock = threading.Lock()

    def infos(self) -> list[BackendInfo]:
        """Every backend in picker order: the engine, the catalog's checkpoints, then added ones."""
        with self._lock:
            if self._own is None:
                catalog = (self.manager or get_manager()).catalog
                self._own = [BackendInfo("engine", ENGINE_TITLE, ENGINE_DESCRIPTION, self._engine)]
                self._own += [BackendInfo(c.id, c.name, describe(c), self._model_factory(c))
                              for c in catalog.values()]  # fmt: skip
            own = list(self._own)
        ids = {info.id for info in own}
        with _added_lock:
            return own + [info for info in _added.values() if info.id not in ids]

    def ids(self) -> list[str]:
        return [info.id for info in self.infos()]

    def info(self, backend_id: str) -> BackendInfo:
        infos = {info.id: info for info in self.infos()}
        if backend_id not in infos:
            raise JobError(f"Unknown backend '{backend_id}'. Available: {', '.join(infos)}.")
        return infos[backend_id]

    def get(self, backend_id: str) -> Backend:
        """The shared instance of a backend (backends keep their own caches)."""
        info = self.info(backend_id)
        with self._lock:
            if info not in self._instances:
                self._instances[info] = info.factory()
            return self._instances[info]

    def _engine(self) -> Backend:
        from studio.backends.engine import EngineBackend

        # settings.depth "auto" uses the learned depth model when its weights are cached.
        return EngineBackend(
            depth=self.settings.depth, depth_model=self.settings.depth_model, models=self.manager
        )

    def _model_factory(self, ckpt: Checkpoint) -> Callable[[], Backend]:
        return lambda: family_backend(ckpt.family)(ckpt, self.manager)


_registries: dict[Settings, Backends] = {}
_registries_lock = threading.Lock()


def registry(settings: Settings | None = None) -> Backends:
    """The registry for these settings (from the environment when none are given), built once."""
    settings = settings if settings is not None else Settings.from_env()
    with _registries_lock:
        if settings not in _registries:
            _registries[settings] = Backends(settings)
        return _registries[settings]


def list_backends(settings: Settings | None = None) -> list[BackendInfo]:
    return registry(settings).infos()


def get_backend(backend_id: str, settings: Settings | None = None) -> Backend:
    """The shared instance of a backend for these settings."""
    return registry(settings).get(backend_id)
