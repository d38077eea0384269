"""Helper models: the small learned models features use beside the pipelines (depth, faces...)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class HelperModel:
    """Where a helper model lives and how it loads; the manager loads, counts and caches it.

    Its files come from `repo` in the local Hugging Face cache (never downloaded on the way),
    or from `folder` when they ship with the studio. Each of `classes` ("package.Class") is
    loaded with from_pretrained(folder); a model that is no from_pretrained folder gives
    `build` instead, which turns the folder into the loaded model (e.g. TFLite interpreters).
    """

    name: str  # said to the user: "Depth Anything V2"
    repo: str = ""
    folder: Path | None = None
    files: tuple[str, ...] = ("config.json",)  # all on disk = the model is available
    classes: tuple[str, ...] = ()
    build: Callable[[Path], Any] | None = None
    packages: tuple[str, ...] = ("torch", "transformers")
    device: str = "cpu"

    @property
    def key(self) -> tuple:
        return ("helper", self.repo or str(self.folder), self.classes, self.device)


@dataclass
class LoadedHelper:
    """A helper model in the cache: what it loaded into, from where, and its size."""

    key: tuple
    helper: HelperModel
    value: Any  # a tuple of the loaded classes, or what build returned
    folder: Path
    nbytes: int
    load_s: float

    @property
    def label(self) -> str:
        return self.helper.repo or self.helper.name

    def release(self) -> None:
        self.value = None


def build_helper(helper: HelperModel, folder: Path) -> Any:
    """Load a helper model from its local folder: build(folder), or each class's from_pretrained."""
    if helper.build is not None:
        return helper.build(folder)
    loaded = []
    for path in helper.classes:
        module, _, name = path.rpartition(".")
        obj = getattr(importlib.import_module(module), name).from_pretrained(str(folder))
        if _is_module(obj):
            obj = obj.to(helper.device).eval()
        loaded.append(obj)
    return tuple(loaded)


def helper_bytes(value: Any, folder: Path, files: tuple[str, ...]) -> int:
    """Bytes of a loaded helper: its torch weights, else the size of its files on disk."""
    parts = value if isinstance(value, tuple) else (value,)
    total = 0
    for obj in parts:
        if _is_module(obj):
            for t in (*obj.parameters(), *obj.buffers()):
                total += t.numel() * t.element_size()
    if total:
        return total
    return sum((folder / f).stat().st_size for f in files if (folder / f).is_file())


def _is_module(obj: Any) -> bool:
    return callable(getattr(obj, "parameters", None)) and callable(getattr(obj, "eval", None))
