"""The model manager: checkpoint catalog, download, load, cache and evict diffusers pipelines.

Loading is a service: one ModelManager owns downloads, device placement, the cache of
loaded pipelines and its memory budget; backends ask it for a pipeline and never call
from_pretrained themselves. Nothing heavy is imported until a checkpoint is first used.
"""

from __future__ import annotations

import gc
import importlib.util
import json
import logging
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from studio.errors import BackendError, CatalogError, ModelUnavailable, OutOfMemory
from studio.fields import FieldReader

log = logging.getLogger(__name__)

CATALOG_PATH = Path(__file__).resolve().parent.parent / "presets" / "models.yaml"
FAMILIES = ("svd", "ltx", "cogvideox", "wan", "skyreels")
OFFLOAD_MODES = ("none", "model", "sequential", "group")
CACHE_MODES = ("none", "fbc", "taylorseer", "magcache", "faster")
DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
GIB = 1024**3


# What requirements-models.txt adds to the studio; the embedded engine needs none of it.
MODEL_PACKAGES = ("torch", "diffusers", "transformers", "accelerate")


def require_model_packages(
    what: str = "This model", packages: tuple[str, ...] = MODEL_PACKAGES
) -> None:
    """Raise ModelUnavailable, naming the one install command, unless packages are installed.

    find_spec looks for the packages without importing them, so asking costs nothing.
    """
    if any(importlib.util.find_spec(name) is None for name in packages):
        raise ModelUnavailable(
            f"{what} needs the model packages: run `.venv/bin/pip install -r "
            "requirements-models.txt`, then restart the studio."
        )


# --------------------------------------------------------------------------- catalog


@dataclass(frozen=True)
class Licence:
    name: str
    commercial: str  # one-line summary for creators, not legal advice
    url: str  # the model card


@dataclass(frozen=True)
class FrameRule:
    """Valid frame counts are step * k + offset, at most max."""

    default: int
    step: int = 1
    offset: int = 0
    max: int = 1000

    def snap(self, frames: int) -> int:
        """The valid count nearest to frames (ties go up), within 1..max."""
        k = max(0, math.floor((frames - self.offset) / self.step + 0.5))
        n = self.step * k + self.offset
        if n < 1:
            n += self.step
        while n > self.max:
            n -= self.step
        return n


@dataclass(frozen=True)
class Checkpoint:
    """One catalog entry: where a model lives, what it needs and what it accepts."""

    id: str
    name: str
    family: str
    repo: str
    revision: str
    pipeline: str
    licence: Licence
    vram_gb: tuple[float, float]  # (plain, with offload)
    resolution: tuple[int, int]  # native (width, height)
    multiple: int
    frames: FrameRule
    fps: int
    text_prompt: bool
    steps: int
    guidance: float
    offload: str = "model"  # default memory mode on CUDA
    variant: str | None = None
    fixed_size: bool = False
    strength: dict[str, tuple[float, float]] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    def render_size(self, width: int, height: int) -> tuple[int, int]:
        """The size the model renders at for a requested output size.

        The plan's aspect at no more than the model's native pixel count, both sides a
        multiple of the model's; the result is resized to the plan's size afterwards.
        """
        nw, nh = self.resolution
        scale = min(1.0, ((nw * nh) / (width * height)) ** 0.5)
        m = self.multiple
        return max(m, round(width * scale / m) * m), max(m, round(height * scale / m) * m)


class _Entry(FieldReader):
    """Reads typed fields from one catalog entry; every error names the file and field."""

    error = CatalogError

    def positive_int(self, name: str, default: Any = ...) -> int:
        value = self.get(name, int, default)
        if value is not None and value < 1:
            raise self.fail(name, f"must be at least 1, got {value}.")
        return value

    def pair(self, name: str, kind: type) -> tuple:
        value = self.get(name, list)
        if len(value) != 2 or not all(isinstance(v, (int, float)) and v > 0 for v in value):
            raise self.fail(name, f"must be a list of two positive numbers, got {value!r}.")
        return tuple(kind(v) for v in value)


def _parse_checkpoint(raw: Any, where: str) -> Checkpoint:
    f = _Entry(raw, where)
    cid = f.get("id", str)
    f.where = f"{where} (checkpoint '{cid}')"
    family = f.get("family", str)
    if family not in FAMILIES:
        raise f.fail("family", f"must be one of {', '.join(FAMILIES)}, got '{family}'.")
    offload = f.get("offload", str, "model")
    if offload not in OFFLOAD_MODES:
        raise f.fail("offload", f"must be one of {', '.join(OFFLOAD_MODES)}, got '{offload}'.")
    lic = _Entry(f.get("licence", dict), f"{f.where} licence")
    fr = _Entry(f.get("frames", dict), f"{f.where} frames")
    rule = FrameRule(
        default=fr.positive_int("default"),
        step=fr.positive_int("step", 1),
        offset=fr.get("offset", int, 0),
        max=fr.positive_int("max", 1000),
    )
    strength = {}
    for key, span in f.get("strength", dict, {}).items():
        if not (
            isinstance(span, list)
            and len(span) == 2
            and all(isinstance(v, (int, float)) for v in span)
        ):
            raise f.fail(f"strength.{key}", f"must be a [low, high] pair of numbers, got {span!r}.")
        strength[str(key)] = (float(span[0]), float(span[1]))
    return Checkpoint(
        id=cid,
        name=f.get("name", str),
        family=family,
        repo=f.get("repo", str),
        revision=str(f.get("revision", (str, int), "main")),
        pipeline=f.get("pipeline", str),
        licence=Licence(lic.get("name", str), lic.get("commercial", str), lic.get("url", str)),
        vram_gb=f.pair("vram_gb", float),
        resolution=f.pair("resolution", int),
        multiple=f.positive_int("multiple"),
        frames=rule,
        fps=f.positive_int("fps"),
        text_prompt=f.get("text_prompt", bool),
        steps=f.positive_int("steps"),
        guidance=f.get("guidance", float),
        offload=offload,
        variant=f.get("variant", (str, type(None)), None),
        fixed_size=f.get("fixed_size", bool, False),
        strength=strength,
        options=dict(f.get("options", dict, {})),
        source=where,
    )


_CATALOGS: dict[tuple[str, float], dict[str, Checkpoint]] = {}


def load_catalog(path: str | Path = CATALOG_PATH) -> dict[str, Checkpoint]:
    """The catalog as {id: Checkpoint}, in file order; cached until the file changes."""
    path = Path(path)
    try:
        key = (str(path), path.stat().st_mtime)
    except OSError:
        raise CatalogError(f"The model catalog {path} is missing.") from None
    if key in _CATALOGS:
        return _CATALOGS[key]
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path.name}: not valid YAML ({exc}).") from None
    entries = _Entry(data, path.name).get("checkpoints", list)
    catalog: dict[str, Checkpoint] = {}
    for i, raw in enumerate(entries):
        ckpt = _parse_checkpoint(raw, f"{path.name} checkpoint #{i + 1}")
        if ckpt.id in catalog or ckpt.id == "engine":
            raise CatalogError(f"{path.name}: checkpoint id '{ckpt.id}' is used twice.")
        catalog[ckpt.id] = ckpt
    _CATALOGS[key] = catalog
    return catalog


# --------------------------------------------------------------------------- options


@dataclass(frozen=True)
class LoadOptions:
    """How to load one checkpoint; part of the cache key."""

    device: str
    dtype: str  # "float32", "float16", "bfloat16"
    offload: str = "none"
    cache: str = "none"
    model_path: str | None = None


def default_device() -> str:
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def resolve_options(ckpt: Checkpoint, params: dict[str, Any]) -> LoadOptions:
    """Device, dtype and memory mode from job params, else chosen for this machine."""
    import torch

    device = str(params.get("device") or default_device())
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


# --------------------------------------------------------------------------- downloads


def hub_cache_dir() -> Path:
    """The standard Hugging Face cache, read from the environment at call time."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.join(Path.home(), ".cache")), "huggingface"
    )
    return Path(home).expanduser() / "hub"


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def allow_patterns(model_index: dict[str, Any], variant: str | None) -> tuple[list[str], list[str]]:
    """(allow, ignore) patterns that fetch only what the pipeline loads.

    Components come from model_index.json; weights are safetensors only, and when a
    variant (e.g. fp16) is chosen, the full-precision duplicates are skipped.
    """
    allow = ["model_index.json", "README.md"]
    ignore = ["*.bin", "*.ckpt", "*.pt", "*.pth", "*.msgpack", "*.onnx", "*.h5", "*.gguf"]
    for name, spec in model_index.items():
        if name.startswith("_") or not isinstance(spec, list) or spec[0] is None:
            continue
        allow += [f"{name}/*.json", f"{name}/*.txt", f"{name}/*.model"]
        allow.append(f"{name}/*.{variant}*.safetensors" if variant else f"{name}/*.safetensors")
    if variant:
        ignore += [
            "*/diffusion_pytorch_model.safetensors",
            "*/diffusion_pytorch_model-*-of-*.safetensors",
            "*/model.safetensors",
            "*/model-*-of-*.safetensors",
            "*/diffusion_pytorch_model.safetensors.index.json",
            "*/model.safetensors.index.json",
        ]
    return allow, ignore


def _download_error(ckpt: Checkpoint, exc: BaseException) -> ModelUnavailable:
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if isinstance(exc, GatedRepoError):
        return ModelUnavailable(
            f"{ckpt.name} is gated on Hugging Face: accept its licence at {ckpt.licence.url} "
            "while logged in, then set HF_TOKEN to a token of that account."
        )
    if isinstance(exc, RevisionNotFoundError):
        return ModelUnavailable(
            f"Revision '{ckpt.revision}' of {ckpt.repo} does not exist; fix it in presets/models.yaml."
        )
    if isinstance(exc, RepositoryNotFoundError):
        return ModelUnavailable(
            f"{ckpt.repo} was not found on Hugging Face (or is private and needs HF_TOKEN); "
            "check the repo id in presets/models.yaml."
        )
    if isinstance(exc, LocalEntryNotFoundError):
        if hub_offline():
            return ModelUnavailable(
                f"{ckpt.name} is not downloaded and the studio is offline (HF_HUB_OFFLINE is set): "
                "download it once while online, or give a local model folder."
            )
        return ModelUnavailable(
            f"{ckpt.name} is not downloaded and the Hugging Face hub cannot be reached: "
            "check the connection, or give a local model folder."
        )
    reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else exc.__class__.__name__
    return ModelUnavailable(
        f"Downloading {ckpt.name} failed ({reason}); run it again to resume, or give a local model folder."
    )


def _hub_download(**kwargs: Any) -> str:
    from huggingface_hub import snapshot_download

    return snapshot_download(**kwargs)


# --------------------------------------------------------------------------- the manager


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


def pipeline_bytes(pipe: Any) -> int:
    """Bytes of every parameter and buffer of a pipeline's torch modules."""
    import torch

    total = 0
    for component in getattr(pipe, "components", {}).values():
        if isinstance(component, torch.nn.Module):
            for t in (*component.parameters(), *component.buffers()):
                total += t.numel() * t.element_size()
    return total


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*.safetensors") if p.is_file())


def default_budget(device: str) -> int:
    """Bytes of loaded weights the cache may hold: 90% of VRAM on CUDA, half the RAM otherwise."""
    if os.environ.get("STUDIO_MODEL_BUDGET_GB"):
        return int(float(os.environ["STUDIO_MODEL_BUDGET_GB"]) * GIB)
    if device.startswith("cuda"):
        import torch

        return int(torch.cuda.get_device_properties(torch.device(device)).total_memory * 0.9)
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        ram = 16 * GIB
    return int(ram * 0.5)


def free_device_memory() -> None:
    """Return freed memory to the system (and CUDA's cache) after dropping pipelines."""
    gc.collect()
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a runtime dependency
        return
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        torch.mps.empty_cache()


class ModelManager:
    """Owns downloads, loading, device placement and the LRU cache of loaded pipelines."""

    def __init__(
        self,
        catalog: dict[str, Checkpoint] | None = None,
        *,
        downloader: Callable[..., str] | None = None,
        budget_bytes: int | None = None,
    ):
        self._catalog = catalog
        self.downloader = downloader or _hub_download
        self.budget_bytes = budget_bytes
        self._cache: OrderedDict[tuple, Loaded] = OrderedDict()
        self._lock = threading.Lock()
        self._key_locks: dict[tuple, threading.Lock] = {}
        self.loads = 0  # how many times from_pretrained ran (benchmarks and tests read it)

    @property
    def catalog(self) -> dict[str, Checkpoint]:
        return self._catalog if self._catalog is not None else load_catalog()

    def checkpoint(self, checkpoint_id: str) -> Checkpoint:
        try:
            return self.catalog[checkpoint_id]
        except KeyError:
            raise ModelUnavailable(f"'{checkpoint_id}' is not in the model catalog.") from None

    # -- files ---------------------------------------------------------------

    def _fetch(self, ckpt: Checkpoint, local_only: bool, **extra: Any) -> Path:
        token = os.environ.get("HF_TOKEN") or None
        common = dict(
            repo_id=ckpt.repo, revision=ckpt.revision, cache_dir=str(hub_cache_dir()), token=token
        )
        try:
            # model_index.json first: it names the components, so only those are fetched.
            index_dir = Path(self.downloader(**common, allow_patterns=["model_index.json"],
                                             local_files_only=local_only))  # fmt: skip
            index = json.loads((index_dir / "model_index.json").read_text(encoding="utf-8"))
            allow, ignore = allow_patterns(index, ckpt.variant)
            folder = self.downloader(
                **common,
                allow_patterns=allow,
                ignore_patterns=ignore,
                local_files_only=local_only,
                **extra,
            )
        except BackendError:
            raise
        except Exception as exc:  # hub, network and file errors all become one sentence
            log.debug("download of %s failed", ckpt.repo, exc_info=True)
            raise _download_error(ckpt, exc) from None
        return Path(folder)

    def locate(self, ckpt: Checkpoint, model_path: str | None = None) -> Path:
        """The local folder of a checkpoint: the given folder, the HF cache, or a download."""
        if model_path:
            folder = Path(model_path).expanduser()
            if not (folder / "model_index.json").is_file():
                raise ModelUnavailable(
                    f"{folder} is not a diffusers model folder (it has no model_index.json)."
                )
            return folder
        return self._fetch(ckpt, local_only=hub_offline())

    def download(self, ckpt: Checkpoint, tqdm_class: Any = None) -> Path:
        """Download (or resume) a checkpoint into the HF cache; returns its snapshot folder."""
        require_model_packages()  # gigabytes of weights are no use without them
        extra = {"tqdm_class": tqdm_class} if tqdm_class is not None else {}
        return self._fetch(ckpt, local_only=hub_offline(), **extra)

    def on_disk(self, ckpt: Checkpoint) -> Path | None:
        """The cached snapshot folder if the checkpoint is fully downloaded, without network."""
        try:
            folder = self._fetch(ckpt, local_only=True)
        except BackendError:
            return None
        return folder if any(folder.rglob("*.safetensors")) else None

    def state(self, ckpt: Checkpoint) -> str:
        """'loaded', 'on disk' or 'not downloaded'."""
        with self._lock:
            if any(entry.checkpoint.id == ckpt.id for entry in self._cache.values()):
                return "loaded"
        return "on disk" if self.on_disk(ckpt) else "not downloaded"

    # -- loading -------------------------------------------------------------

    def get(self, ckpt: Checkpoint, params: dict[str, Any] | None = None) -> Loaded:
        """The loaded pipeline for a checkpoint, loading it once however many ask at once."""
        require_model_packages()
        options = resolve_options(ckpt, params or {})
        key = (ckpt.id, options)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:  # a second request for the same key waits here for the first load
            with self._lock:
                if key in self._cache:
                    self._cache.move_to_end(key)
                    return self._cache[key]
            folder = self.locate(ckpt, options.model_path)
            self._make_room(_folder_bytes(folder), options.device, keep=None)
            entry = self._load(ckpt, options, folder, key)
            with self._lock:
                self._cache[key] = entry
            self._make_room(0, options.device, keep=key)
            return entry

    def _budget(self, device: str) -> int:
        return self.budget_bytes if self.budget_bytes is not None else default_budget(device)

    def _make_room(self, incoming: int, device: str, keep: tuple | None) -> None:
        """Evict least recently used pipelines until the cache plus incoming fits the budget."""
        budget = self._budget(device)
        while True:
            with self._lock:
                used = sum(e.nbytes for e in self._cache.values())
                victims = [k for k in self._cache if k != keep]
                if used + incoming <= budget or not victims:
                    return
                victim = victims[0]
            self.evict(victim)

    def evict(self, key: tuple | None = None) -> None:
        """Drop one cached pipeline (or all of them) and really free its memory."""
        with self._lock:
            keys = list(self._cache) if key is None else [key]
            entries = [self._cache.pop(k) for k in keys if k in self._cache]
        for entry in entries:
            log.info("unloading %s (%.2f GB)", entry.checkpoint.id, entry.nbytes / GIB)
            remove_hooks = getattr(entry.pipe, "remove_all_hooks", None)
            if callable(remove_hooks):
                try:
                    remove_hooks()
                except Exception:  # offload hooks may be half-installed after an OOM
                    log.debug("could not remove hooks", exc_info=True)
            entry.pipe = None
        del entries
        free_device_memory()

    def loaded(self) -> list[Loaded]:
        with self._lock:
            return list(self._cache.values())

    def _load(self, ckpt: Checkpoint, options: LoadOptions, folder: Path, key: tuple) -> Loaded:
        import diffusers
        import torch

        cls = getattr(diffusers, ckpt.pipeline, None)
        if cls is None:
            raise ModelUnavailable(
                f"This diffusers ({diffusers.__version__}) has no {ckpt.pipeline}; upgrade diffusers to run {ckpt.name}."
            )
        kwargs: dict[str, Any] = {"dtype": getattr(torch, options.dtype)}
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
        notes = self._place(pipe, ckpt, options)
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

    def _place(self, pipe: Any, ckpt: Checkpoint, options: LoadOptions) -> list[str]:
        """Move a fresh pipeline to its device with the chosen memory mode and step cache."""
        import torch

        notes: list[str] = []
        device = torch.device(options.device)
        if options.offload == "model":
            pipe.enable_model_cpu_offload(device=device)
        elif options.offload == "sequential":
            pipe.enable_sequential_cpu_offload(device=device)
        elif options.offload == "group":
            # Leaf-level groups with a CUDA stream overlap transfers with compute: close
            # to plain speed at a fraction of the VRAM (diffusers' recommended setting).
            pipe.enable_group_offload(
                onload_device=device, offload_type="leaf_level", use_stream=True
            )
        else:
            pipe.to(device)
        vae = getattr(pipe, "vae", None)
        if options.offload != "none" and vae is not None:
            for method in ("enable_tiling", "enable_slicing"):
                if callable(getattr(vae, method, None)):
                    getattr(vae, method)()
                    notes.append(f"vae {method[7:]}")
        if options.cache != "none":
            notes.append(self._enable_cache(pipe, ckpt, options.cache))
        return notes

    @staticmethod
    def _enable_cache(pipe: Any, ckpt: Checkpoint, mode: str) -> str:
        import diffusers

        model = getattr(pipe, "transformer", None)
        if model is None or not callable(getattr(model, "enable_cache", None)):
            raise BackendError(f"{ckpt.name} does not support a step cache; set the cache to none.")
        if mode == "fbc":
            config = diffusers.FirstBlockCacheConfig(
                threshold=float(ckpt.options.get("fbc_threshold", 0.05))
            )
        elif mode == "taylorseer":
            config = diffusers.TaylorSeerCacheConfig()
        elif mode == "faster":
            config = diffusers.FasterCacheConfig(
                current_timestep_callback=lambda: pipe.current_timestep
            )
        else:
            ratios = ckpt.options.get("mag_ratios")
            if not ratios:
                raise BackendError(
                    f"MagCache needs calibrated mag_ratios for {ckpt.name} in presets/models.yaml; use fbc or taylorseer."
                )
            config = diffusers.MagCacheConfig(mag_ratios=ratios, num_inference_steps=ckpt.steps)
        model.enable_cache(config)
        return f"step cache {mode}"


def is_oom(exc: BaseException) -> bool:
    """True for CUDA/MPS out-of-memory errors, whatever class torch raised them as."""
    try:
        import torch

        if isinstance(exc, torch.cuda.OutOfMemoryError):
            return True
    except ImportError:  # pragma: no cover
        pass
    return isinstance(exc, (RuntimeError, MemoryError)) and (
        "out of memory" in str(exc).lower() or isinstance(exc, MemoryError)
    )


_MANAGER: ModelManager | None = None
_MANAGER_LOCK = threading.Lock()


def get_manager() -> ModelManager:
    """The process-wide manager every backend shares (so pipelines are loaded once)."""
    global _MANAGER
    with _MANAGER_LOCK:
        if _MANAGER is None:
            _MANAGER = ModelManager()
        return _MANAGER


def set_manager(manager: ModelManager | None) -> None:
    """Replace the shared manager (tests and benchmarks inject their own)."""
    global _MANAGER
    with _MANAGER_LOCK:
        if _MANAGER is not None and _MANAGER is not manager:
            _MANAGER.evict()
        _MANAGER = manager


# --------------------------------------------------------------------------- text for UI/CLI


def card_licence(folder: Path | None) -> str | None:
    """The `license:` tag of a downloaded model card, read locally (never from the network)."""
    if folder is None or not (Path(folder) / "README.md").is_file():
        return None
    try:
        from huggingface_hub import ModelCard

        card = ModelCard.load(Path(folder) / "README.md")
    except Exception:
        log.debug("could not read the model card in %s", folder, exc_info=True)
        return None
    lic = getattr(card.data, "license", None)
    name = getattr(card.data, "license_name", None)
    return f"{lic} ({name})" if lic == "other" and name else lic


def has_suitable_gpu(ckpt: Checkpoint) -> bool:
    """Whether this machine has a CUDA GPU with at least the checkpoint's offloaded VRAM need."""
    try:
        import torch

        if not torch.cuda.is_available():
            return False
        return torch.cuda.get_device_properties(0).total_memory >= ckpt.vram_gb[1] * GIB * 0.95
    except Exception:
        return False


def describe(
    ckpt: Checkpoint,
    manager: ModelManager | None = None,
    state: str | None = None,
    licence: bool = True,
) -> str:
    """One line of facts about a checkpoint: size, VRAM, licence and state."""
    w, h = ckpt.resolution
    if state is None and manager is not None:
        state = manager.state(ckpt)
    facts = [
        f"{w}x{h}, {ckpt.frames.default} frames @ {ckpt.fps} fps",
        f"VRAM {ckpt.vram_gb[0]:g} GB ({ckpt.vram_gb[1]:g} GB with offload)",
    ]
    if licence:
        facts.append(f"{ckpt.licence.name}: {ckpt.licence.commercial}")
    if state:
        facts.append(state)
    return " · ".join(facts)


def choice_label(ckpt: Checkpoint, state: str | None = None) -> str:
    """Short label for a backend picker: name, VRAM need, licence badge, state."""
    badge = {"Apache-2.0": "commercial OK"}.get(ckpt.licence.name, ckpt.licence.name)
    label = f"{ckpt.name} · {ckpt.vram_gb[1]:g}-{ckpt.vram_gb[0]:g} GB VRAM · {badge}"
    return f"{label} · {state}" if state else label


def expectation_note(ckpt: Checkpoint) -> str:
    """What to expect on this machine, said before anyone waits an hour."""
    try:
        require_model_packages()
    except ModelUnavailable as exc:
        return str(exc)
    if has_suitable_gpu(ckpt):
        return f"A suitable GPU is present; {ckpt.name} renders in minutes at its default {ckpt.steps} steps."
    return (
        f"No CUDA GPU with {ckpt.vram_gb[1]:g} GB here: {ckpt.name} would run on the CPU, which takes "
        "hours per clip at full size. Use the embedded engine, or a GPU machine."
    )


def model_summary(ckpt: Checkpoint, manager: ModelManager | None = None) -> str:
    """A Markdown block for the studio: facts, licence (card tag once on disk), state, expectation."""
    manager = manager or get_manager()
    folder = manager.on_disk(ckpt)
    state = manager.state(ckpt) if folder else "not downloaded"
    card = card_licence(folder)
    lic = f"{ckpt.licence.name} — {ckpt.licence.commercial}"
    if card:
        lic += f" (model card: `{card}`)"
    return (
        f"**{ckpt.name}** (`{ckpt.repo}`) · {state}  \n"
        f"{describe(ckpt, licence=False)}  \n"
        f"Licence: {lic} [card]({ckpt.licence.url})  \n"
        f"{expectation_note(ckpt)}"
    )


def catalog_table(manager: ModelManager | None = None) -> list[str]:
    """Lines for `python -m studio models`: one per checkpoint with the same facts as the studio."""
    manager = manager or get_manager()
    lines = []
    for ckpt in manager.catalog.values():
        folder = manager.on_disk(ckpt)
        state = manager.state(ckpt) if folder else "not downloaded"
        card = card_licence(folder)
        lines.append(f"{ckpt.id}  {ckpt.name}  [{state}]")
        lines.append(f"    {ckpt.repo}@{ckpt.revision} ({ckpt.pipeline})")
        lines.append(f"    {describe(ckpt)}" + (f" · card licence: {card}" if card else ""))
    return lines


def backend_choices(manager: ModelManager | None = None) -> list[tuple[str, str]]:
    """(label, id) for the studio's backend picker: the engine first, then every checkpoint."""
    from studio.backends import list_backends

    manager = manager or get_manager()
    catalog = manager.catalog
    return [
        (
            choice_label(catalog[b.id], manager.state(catalog[b.id]))
            if b.id in catalog
            else b.title,
            b.id,
        )
        for b in list_backends()
    ]


def backend_markdown(backend_id: str, manager: ModelManager | None = None) -> str:
    """What the studio shows under the picker: nothing for the engine, the facts for a checkpoint."""
    manager = manager or get_manager()
    ckpt = manager.catalog.get(backend_id)
    return model_summary(ckpt, manager) if ckpt else ""


def download_checkpoint(
    backend_id: str, manager: ModelManager | None = None, tqdm_class: Any = None
) -> str:
    """Download a checkpoint for the studio's button; returns the sentence to show."""
    manager = manager or get_manager()
    ckpt = manager.catalog.get(backend_id)
    if ckpt is None:
        return "The embedded engine needs no download."
    folder = manager.download(ckpt, tqdm_class=tqdm_class)
    return f"{ckpt.name} is on disk in {folder}."
