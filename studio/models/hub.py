"""Files from the Hugging Face hub: what to fetch, fetching it, and saying why it failed.

Only the files a pipeline loads are fetched, into the standard HF cache, resumably; every
failure becomes one sentence a creator can act on.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.errors import BackendError, ModelUnavailable
from studio.models.catalog import Checkpoint

log = logging.getLogger(__name__)

# What requirements-models.txt adds to the studio; the embedded engine needs none of it.
MODEL_PACKAGES = ("torch", "diffusers", "transformers", "accelerate")


def require_model_packages(
    what: str = "This model", packages: tuple[str, ...] = MODEL_PACKAGES
) -> None:
    """Raise ModelUnavailable, naming the one install command, unless packages are installed.

    find_spec looks for the packages without importing them, so asking costs nothing.
    """
    if not have_packages(packages):
        raise ModelUnavailable(
            f"{what} needs the model packages: run `.venv/bin/pip install -r "
            "requirements-models.txt`, then restart the studio."
        )


def have_packages(packages: tuple[str, ...]) -> bool:
    return all(importlib.util.find_spec(name) is not None for name in packages)


@dataclass(frozen=True)
class Hub:
    """Where and how to reach the hub: the cache folder, the token, offline or not."""

    cache_dir: Path
    token: str | None = None
    offline: bool = False
    # snapshot_download's signature; tests and benchmarks pass a stand-in.
    download: Callable[..., str] | None = None

    def fetch(self, ckpt: Checkpoint, local_only: bool, **extra: Any) -> Path:
        """The snapshot folder of a checkpoint, downloading (or resuming) unless local_only."""
        download = self.download or hub_download
        common = dict(repo_id=ckpt.repo, revision=ckpt.revision, cache_dir=str(self.cache_dir),
                      token=self.token)  # fmt: skip
        try:
            # model_index.json first: it names the components, so only those are fetched.
            index_dir = Path(download(**common, allow_patterns=["model_index.json"],
                                      local_files_only=local_only))  # fmt: skip
            index = json.loads((index_dir / "model_index.json").read_text(encoding="utf-8"))
            allow, ignore = allow_patterns(index, ckpt.variant)
            folder = download(**common, allow_patterns=allow, ignore_patterns=ignore,
                              local_files_only=local_only, **extra)  # fmt: skip
        except BackendError:
            raise
        except Exception as exc:  # hub, network and file errors all become one sentence
            log.debug("download of %s failed", ckpt.repo, exc_info=True)
            raise download_error(ckpt, exc, self.offline) from None
        return Path(folder)

    def cached(self, repo: str, files: tuple[str, ...]) -> Path | None:
        """The local snapshot folder holding every one of files, looked up without network."""
        # The hub keeps a repo under models--<owner>--<name>: without that folder nothing is
        # cached, and the hub library (a fifth of a second to import) is not needed to say so.
        if not (Path(self.cache_dir) / ("models--" + repo.replace("/", "--"))).is_dir():
            return None
        from huggingface_hub import try_to_load_from_cache

        folder = None
        for filename in files:
            found = try_to_load_from_cache(repo, filename, cache_dir=str(self.cache_dir))
            if not isinstance(found, str):
                return None
            if folder is None:  # found is <snapshot>/<filename>
                folder = Path(found).parents[len(Path(filename).parts) - 1]
        return folder


def hub_download(**kwargs: Any) -> str:
    """huggingface_hub.snapshot_download, imported only when something is fetched."""
    from huggingface_hub import snapshot_download

    return snapshot_download(**kwargs)


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


def download_error(ckpt: Checkpoint, exc: BaseException, offline: bool) -> ModelUnavailable:
    """The sentence for a failed download or lookup of ckpt."""
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
        if offline:
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
