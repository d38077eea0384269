"""The errors a creator can hit, each carrying one sentence the UI and CLI show as is."""


class StudioError(Exception):
    """A problem the user can fix; str(error) is the sentence we show them."""


class ImageError(StudioError):
    """The uploaded file is not a photo we can use."""


class PresetError(StudioError):
    """A preset file or preset id is wrong."""


class JobError(StudioError):
    """The generation request has an impossible or unknown setting."""


class BackendError(StudioError):
    """A backend cannot run here (missing model, no GPU, out of memory...)."""


class Cancelled(StudioError):
    """The user pressed Cancel; nothing half-written is kept."""
