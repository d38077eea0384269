"""What the studio and the CLI say about models: facts, licence, state and expectations."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from studio.errors import ModelUnavailable
from studio.models.cache import GIB
from studio.models.catalog import Checkpoint
from studio.models.hub import require_model_packages
from studio.models.manager import ModelManager, get_manager

log = logging.getLogger(__name__)


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
    """One line of facts about a checkpoint: size, VRAM, licence (Checkpoint.summary) and state."""
    if state is None and manager is not None:
        state = manager.state(ckpt)
    facts = ckpt.summary(licence=licence)
    return f"{facts} · {state}" if state else facts


def choice_label(ckpt: Checkpoint, state: str | None = None) -> str:
    """Short label for a backend picker: name, VRAM need, licence badge, state."""
    badge = {"Apache-2.0": "commercial OK"}.get(ckpt.licence.name, ckpt.licence.name)
    if ckpt.licence.regions:
        badge += " (not everywhere)"
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
    lic = ckpt.licence.line()
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


def backend_choices(
    backends: Iterable[Any], manager: ModelManager | None = None
) -> list[tuple[str, str]]:
    """(label, id) for the studio's backend picker, in the order of backends (the records of
    studio.backends.list_backends: the engine first, then every checkpoint)."""
    manager = manager or get_manager()
    catalog = manager.catalog
    return [
        (
            choice_label(catalog[b.id], manager.state(catalog[b.id]))
            if b.id in catalog
            else b.title,
            b.id,
        )
        for b in backends
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
