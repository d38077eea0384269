"""The cache of loaded models: an LRU under a memory budget, and one load per key at a time."""

from __future__ import annotations

import gc
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger(__name__)

GIB = 1024**3


class Entry(Protocol):
    """What the cache keeps: a loaded model with its key, its size and a way to let go of it."""

    key: tuple
    nbytes: int
    label: str  # for the log: a checkpoint id or a helper model's repo

    def release(self) -> None: ...


class ModelCache:
    """Loaded models under a memory budget, least recently used evicted first.

    budget(device) says how many bytes of loaded models may be held while loading onto device.
    A second request for a key that is loading waits for that load instead of starting another.
    """

    def __init__(self, budget: Callable[[str], int]):
        self.budget = budget
        self._entries: OrderedDict[tuple, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._key_locks: dict[tuple, threading.Lock] = {}

    def get(self, key: tuple) -> Any | None:
        """The entry for key, marked as just used; None when it is not loaded."""
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
        return None

    def get_or_load(self, key: tuple, device: str, load: Callable[[], Any]) -> Any:
        """The entry for key, loading it once however many threads ask at once.

        load() makes room for what it is about to load (make_room) and returns the entry;
        afterwards the cache is trimmed to the budget again, keeping the new entry.
        """
        entry = self.get(key)
        if entry is not None:
            return entry
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:  # a second request for the same key waits here for the first load
            entry = self.get(key)
            if entry is not None:
                return entry
            entry = load()
            with self._lock:
                self._entries[key] = entry
            self.make_room(0, device, keep=key)
            return entry

    def used_bytes(self) -> int:
        with self._lock:
            return sum(e.nbytes for e in self._entries.values())

    def entries(self) -> list[Any]:
        """Every loaded entry, least recently used first."""
        with self._lock:
            return list(self._entries.values())

    def make_room(self, incoming: int, device: str, keep: tuple | None) -> None:
        """Evict least recently used entries until the cache plus incoming fits the budget."""
        budget = self.budget(device)
        while True:
            with self._lock:
                used = sum(e.nbytes for e in self._entries.values())
                victims = [k for k in self._entries if k != keep]
                if used + incoming <= budget or not victims:
                    return
                victim = victims[0]
            self.evict(victim)

    def evict(self, key: tuple | None = None) -> None:
        """Drop one entry (or all of them) and really free its memory."""
        with self._lock:
            keys = list(self._entries) if key is None else [key]
            entries = [self._entries.pop(k) for k in keys if k in self._entries]
        for entry in entries:
            log.info("unloading %s (%.2f GB)", entry.label, entry.nbytes / GIB)
            entry.release()
        del entries
        free_device_memory()


def free_device_memory() -> None:
    """Return freed memory to the system (and CUDA's cache) after dropping models."""
    gc.collect()
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a runtime dependency
        return
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        torch.mps.empty_cache()


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
