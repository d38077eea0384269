"""Every error a creator can hit, each carrying one sentence the UI and CLI show as is."""

from __future__ import annotations


class StudioError(Exception):
    """A problem the user can fix; str(error) is the sentence we show them."""


class ImageError(StudioError):
    """The uploaded file is not a photo we can use."""


class PresetError(StudioError):
    """A preset file or preset id is wrong."""


class JobError(StudioError):
    """The generation request has an impossible or unknown setting."""


class Cancelled(StudioError):
    """The user pressed Cancel; nothing half-written is kept."""


class EncodeError(StudioError):
    """The video could not be written (disk full, ffmpeg missing...)."""


class ClipError(StudioError):
    """A clip file is missing, damaged or too short to score."""


class BackendError(StudioError):
    """A backend cannot run here (missing model, no GPU, out of memory...)."""


class CatalogError(BackendError):
    """presets/models.yaml is malformed; the sentence names the file and the field."""


class ModelUnavailable(BackendError):
    """A checkpoint cannot be found, downloaded or loaded here."""


class OutOfMemory(BackendError):
    """The device ran out of memory; the sentence says what to change."""


class ClusterError(StudioError):
    """The Ray cluster cannot be used, or lost a job's worker more often than it retries."""


class ExposureError(StudioError):
    """The studio would be reachable by others without a login."""


class UploadError(StudioError):
    """A file input named something that was not uploaded through the studio."""


def clip_text(value: object, limit: int = 60) -> str:
    """A user-supplied value, shortened for quoting in a message (a 1 MB id stays one line)."""
    text = str(value).replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def failure_message(exc: BaseException) -> str:
    """One sentence for a job that failed, whoever caused it: the user's own sentence for a
    StudioError, else a plain account of a bug or an out-of-memory (logged by the caller)."""
    if isinstance(exc, StudioError):
        return str(exc)
    text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
    if isinstance(exc, MemoryError) or "out of memory" in text.lower():
        return (
            "This job ran out of memory and was stopped; try a smaller size, fewer frames "
            "or another backend. Other jobs are not affected."
        )
    detail = f" ({exc.__class__.__name__}: {text})" if text else f" ({exc.__class__.__name__})"
    return (
        f"This job failed because of a problem in the studio{detail}; it has been logged. "
        "Other jobs are not affected; please try again."
    )
