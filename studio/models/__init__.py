"""Models: the checkpoint catalog, hub downloads, and the manager that loads and caches them.

catalog.py   presets/models.yaml -> Checkpoint dataclasses
options.py   how a checkpoint loads (device, dtype, offload, step cache) and the choices
device.py    which device a model runs on
placement.py memory mode, VAE tiling/slicing, low-VRAM recipe and step cache of a loaded pipeline
hub.py       what to fetch from the Hugging Face hub, fetching it, and why it failed
cache.py     loaded models under a memory budget (LRU), one load per key at a time
helpers.py   the small learned models features use (depth, faces...)
manager.py   ModelManager: the one service that finds, loads, places and evicts models
text.py      what the studio and the CLI say about a model
"""

from studio.errors import CatalogError, ModelUnavailable, OutOfMemory
from studio.models.cache import GIB, free_device_memory, is_oom
from studio.models.catalog import (
    CACHE_FORMATS,
    CATALOG_PATH,
    FAMILIES,
    Checkpoint,
    FrameRule,
    Licence,
    LowVram,
    load_catalog,
)
from studio.models.device import default_device, resolve_device
from studio.models.helpers import HelperModel
from studio.models.hub import MODEL_PACKAGES, allow_patterns, require_model_packages
from studio.models.manager import Loaded, ModelManager, get_manager, pipeline_bytes, set_manager
from studio.models.options import (
    CACHE_MODES,
    DTYPES,
    LESS_VRAM,
    OFFLOAD_MODES,
    LoadOptions,
    resolve_options,
)
from studio.models.text import (
    backend_choices,
    backend_markdown,
    catalog_table,
    choice_label,
    describe,
    download_checkpoint,
    expectation_note,
    model_summary,
)

__all__ = [
    "CACHE_FORMATS",
    "CACHE_MODES",
    "CATALOG_PATH",
    "DTYPES",
    "FAMILIES",
    "GIB",
    "MODEL_PACKAGES",
    "OFFLOAD_MODES",
    "CatalogError",
    "Checkpoint",
    "FrameRule",
    "HelperModel",
    "LESS_VRAM",
    "Licence",
    "LowVram",
    "LoadOptions",
    "Loaded",
    "ModelManager",
    "ModelUnavailable",
    "OutOfMemory",
    "allow_patterns",
    "backend_choices",
    "backend_markdown",
    "catalog_table",
    "choice_label",
    "default_device",
    "describe",
    "download_checkpoint",
    "expectation_note",
    "free_device_memory",
    "get_manager",
    "is_oom",
    "load_catalog",
    "model_summary",
    "pipeline_bytes",
    "require_model_packages",
    "resolve_device",
    "resolve_options",
    "set_manager",
]
