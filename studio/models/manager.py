"""The model manager: one object finds, loads, places, caches and evicts every model.

Loading is a service: backends ask it for a pipeline and features for a helper model; none
of them calls from_pretrained itself. It takes its memory budget, hub token and cache folder
from the settings it is given. Nothing heavy is imported until a model is first used.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.errors import BackendError, ModelUnavailable, OutOfMemory
from studio.models.cache import GIB, ModelCache, free_device_memory, is_oom
from studio.models.catalog import Checkpoint, load_catalog
from studio.models.helpers import HelperModel, LoadedHelper, build_helper, helper_bytes
from studio.models.hub import Hub, have_packages, require_model_packages
from studio.models.options import LoadOptions, dtype_argument, resolve_options
from studio.models.placement import place
from studio.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Loaded:
    """A pipeline in the cache, with what it cost and how it was placed."""

    key: tuple
    checkpoint: Checkpoint
    pipe: Any
    options: LoadOptions
    folder: Path
    nbytes: int
    load_s: float
    notes: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return self.checkpoint.id

    def release(self) -> None:
        remove_hooks = getattr(self.pipe, "remove_all_hooks", None)
        if callable(remove_hooks):
            try:
                remove_hooks()
            except Exception:  # offload hooks may be half-installed after an OOM
                log.debug("could not remove hooks", exc_info=True)
        self.pipe = None


def pipeline_bytes(pipe: Any) -> int:
    """Bytes of every parameter and buffer of a pipeline's torch modules."""
    import torch

    total = 0
    for component in getattr(pipe, "components", {}).values():
        if isinstance(component, torch.nn.Module):
            for t in (*component.parameters(), *component.buffers()):
                total += t.numel() * t.element_size()
    return total


def configure_scheduler(pipe: Any, ckpt: Checkpoint) -> None:
    """Apply the catalog's scheduler settings to a fresh pipeline, as the docs do for SkyReels-V2:
    UniPCMultistepScheduler.from_config(pipe.scheduler.config, flow_shift=5.0)."""
    if not ckpt.scheduler:
        return
    import diffusers

    settings = dict(ckpt.scheduler)
    name = settings.pop("class", None)
    cls = type(pipe.scheduler) if name is None else getattr(diffusers, name, None)
    if cls is None:
        raise ModelUnavailable(
            f"This diffusers ({diffusers.__version__}) has no {name}; upgrade diffusers to run {ckpt.name}."
        )
    scheduler = cls.from_config(pipe.scheduler.config, **settings)
    # from_config drops settings the class does not have (with a log line): say so instead.
    missing = [key for key, value in settings.items() if scheduler.config.get(key) != value]
    if missing:
        raise ModelUnavailable(
            f"{ckpt.name}'s scheduler ({cls.__name__}) has no setting '{missing[0]}'; "
            "the model folder does not match its catalog entry."
        )
    pipe.scheduler = scheduler


def default_budget(device: str) -> int:
    """Bytes of loaded weights the cache may hold: 90% of VRAM on CUDA, half the RAM otherwise."""
    if device.startswith("cuda"):
        import torch

        return int(torch.cuda.get_device_properties(torch.device(device)).total_memory * 0.9)
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        ram = 16 * GIB
    return int(ram * 0.5)


class ModelManager:
    """Owns downloads, loading, device placement and the LRU cache of loaded models."""

    def __init__(
        self,
        catalog: dict[str, Checkpoint] | None = None,
        *,
        downloader: Any = None,
        budget_bytes: int | None = None,
        settings: Settings | None = None,
    ):
        self.settings = settings or Settings.from_env()
        self._catalog = catalog
        s = self.settings
        self.hub = Hub(s.hub_cache, s.hf_token or None, s.hub_offline, downloader)
        if budget_bytes is None and s.model_budget_gb > 0:
            budget_bytes = int(s.model_budget_gb * GIB)
        self.budget_bytes = budget_bytes
        self.cache = ModelCache(self.budget)
        self.loads = 0  # how many times from_pretrained ran (benchmarks and tests read it)

    @property
    def catalog(self) -> dict[str, Checkpoint]:
        """presets/models.yaml, read once by this manager."""
        if self._catalog is None:
            self._catalog = load_catalog()
        return self._catalog

    def checkpoint(self, checkpoint_id: str) -> Checkpoint:
        try:
            return self.catalog[checkpoint_id]
        except KeyError:
            raise ModelUnavailable(f"'{checkpoint_id}' is not in the model catalog.") from None

    # -- memory ------------------------------------------------------------------------

    def budget(self, device: str) -> int:
        """Bytes of loaded models this manager may hold while loading onto device."""
        return self.budget_bytes if self.budget_bytes is not None else default_budget(device)

    def free_bytes(self, device: str) -> int:
        """Memory free for work on device: the GPU's own count on CUDA, else the budget left."""
        if device.startswith("cuda"):
            import torch

            return int(torch.cuda.mem_get_info(torch.device(device))[0])
        return self.budget(device) - self.cache.used_bytes()

    def evict(self, key: tuple | None = None) -> None:
        """Drop one cached model (or all of them) and really free its memory."""
        self.cache.evict(key)

    def loaded(self) -> list[Loaded]:
        """The pipelines now loaded, least recently used first."""
        return [e for e in self.cache.entries() if isinstance(e, Loaded)]

    # -- files -------------------------------------------------------------------------

    def locate(self, ckpt: Checkpoint, model_path: str | None = None) -> Path:
        """The local folder of a checkpoint: the given folder, the HF cache, or a download."""
        if model_path:
            folder = Path(model_path).expanduser()
            if not (folder / "model_index.json").is_file():
                raise ModelUnavailable(
                    f"{folder} is not a diffusers model folder (it has no model_index.json)."
                )
            return folder
        return self.hub.fetch(ckpt, local_only=self.hub.offline)

    def download(self, ckpt: Checkpoint, tqdm_class: Any = None) -> Path:
        """Download (or resume) a checkpoint into the HF cache; returns its snapshot folder."""
        require_model_packages()  # gigabytes of weights are no use without them
        extra = {"tqdm_class": tqdm_class} if tqdm_class is not None else {}
        return self.hub.fetch(ckpt, local_only=self.hub.offline, **extra)

    def on_disk(self, ckpt: Checkpoint) -> Path | None:
        """The cached snapshot folder if the checkpoint is fully downloaded, without network."""
        try:
            folder = self.hub.fetch(ckpt, local_only=True)
        except BackendError:
            return None
        return folder if any(folder.rglob("*.safetensors")) else None

    def state(self, ckpt: Checkpoint) -> str:
        """'loaded', 'on disk' or 'not downloaded'."""
        if any(entry.checkpoint.id == ckpt.id for entry in self.loaded()):
            return "loaded"
        return "on disk" if self.on_disk(ckpt) else "not downloaded"

    # -- pipelines ---------------------------------------------------------------------

    def get(self, ckpt: Checkpoint, params: dict[str, Any] | None = None) -> Loaded:
        """The loaded pipeline for a checkpoint, loading it once however many ask at once."""
        require_model_packages()
        options = resolve_options(ckpt, params or {})
        key = (ckpt.id, options)

        def load() -> Loaded:
            folder = self.locate(ckpt, options.model_path)
            weights = sum(p.stat().st_size for p in folder.rglob("*.safetensors") if p.is_file())
            self.cache.make_room(weights, options.device, keep=None)
            return self._load(ckpt, options, folder, key)

        return self.cache.get_or_load(key, options.device, load)

    def _load(self, ckpt: Checkpoint, options: LoadOptions, folder: Path, key: tuple) -> Loaded:
        import diffusers

        cls = getattr(diffusers, ckpt.pipeline, None)
        if cls is None:
            raise ModelUnavailable(
                f"This diffusers ({diffusers.__version__}) has no {ckpt.pipeline}; upgrade diffusers to run {ckpt.name}."
            )
        kwargs: dict[str, Any] = {"dtype": dtype_argument(ckpt, options.dtype)}
        # A local folder saved without the variant still loads (its plain files are used).
        if ckpt.variant and any(folder.rglob(f"*.{ckpt.variant}*.safetensors")):
            kwargs["variant"] = ckpt.variant
        started = time.perf_counter()
        try:
            pipe = cls.from_pretrained(str(folder), **kwargs)
        except Exception as exc:
            if is_oom(exc):
                free_device_memory()
                raise OutOfMemory(
                    f"Not enough memory to load {ckpt.name}; close other programs or pick a smaller model."
                ) from None
            log.debug("loading %s failed", folder, exc_info=True)
            raise ModelUnavailable(
                f"Could not load {ckpt.name} from {folder} ({exc.__class__.__name__}: "
                f"{str(exc).splitlines()[0][:160] if str(exc) else ''}); the download may be incomplete."
            ) from None
        self.loads += 1
        configure_scheduler(pipe, ckpt)
        notes = place(pipe, ckpt, options)
        pipe.set_progress_bar_config(disable=True)
        nbytes = pipeline_bytes(pipe)
        load_s = time.perf_counter() - started
        log.info(
            "loaded %s on %s/%s in %.1f s (%.2f GB)",
            ckpt.id,
            options.device,
            options.dtype,
            load_s,
            nbytes / GIB,
        )
        return Loaded(key, ckpt, pipe, options, folder, nbytes, load_s, tuple(notes))

    # -- helper models -----------------------------------------------------------------

    def helper_folder(self, helper: HelperModel) -> Path | None:
        """The local folder of a helper model when it and its packages are here; no network."""
        if not have_packages(helper.packages):
            return None
        if helper.folder is not None:
            folder = Path(helper.folder)
            return folder if all((folder / f).is_file() for f in helper.files) else None
        if not have_packages(("huggingface_hub",)):
            return None
        return self.hub.cached(helper.repo, helper.files)

    def load_helper(self, helper: HelperModel) -> Any:
        """A helper model, loaded once from local files and kept under the same budget as the
        pipelines: the tuple of its from_pretrained classes, or what its build returned."""
        require_model_packages(helper.name, helper.packages)

        def load() -> LoadedHelper:
            folder = self.helper_folder(helper)
            if folder is None:
                raise ModelUnavailable(f"{helper.name} is not downloaded.")
            on_disk = sum((folder / f).stat().st_size for f in helper.files)
            self.cache.make_room(on_disk, helper.device, keep=None)
            started = time.perf_counter()
            value = build_helper(helper, folder)
            load_s = time.perf_counter() - started
            nbytes = helper_bytes(value, folder, helper.files)
            log.info("loaded %s in %.1f s (%.2f GB)", helper.name, load_s, nbytes / GIB)
            return LoadedHelper(helper.key, helper, value, folder, nbytes, load_s)

        return self.cache.get_or_load(helper.key, helper.device, load).value


_MANAGER: ModelManager | None = None
_MANAGER_LOCK = threading.Lock()


def get_manager() -> ModelManager:
    """The process-wide manager every backend shares (so models are loaded once)."""
    global _MANAGER
    with _MANAGER_LOCK:
        if _MANAGER is None:
            _MANAGER = ModelManager()
        return _MANAGER


def set_manager(manager: ModelManager | None) -> None:
    """Replace the shared manager (the app, tests and benchmarks give their own)."""
    global _MANAGER
    with _MANAGER_LOCK:
        if _MANAGER is not None and _MANAGER is not manager:
            _MANAGER.evict()
        _MANAGER = manager
