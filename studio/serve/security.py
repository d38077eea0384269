"""Safe to expose: who may log in, when a login is required, and which files the server may serve."""

from __future__ import annotations

import ipaddress
import logging
import os
import stat
from pathlib import Path

from studio.errors import ExposureError, StudioError, UploadError, clip_text
from studio.serve.history import STATE_DIR
from studio.settings import Settings

log = logging.getLogger(__name__)


def parse_auth(text: str | None) -> list[tuple[str, str]]:
    """'user:pass' or 'alice:pw1,bob:pw2' -> [(user, pass), ...]; empty text -> []."""
    pairs = []
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        user, sep, password = part.partition(":")
        if not sep or not user.strip() or not password:
            raise StudioError("Login must look like user:password (several as alice:pw1,bob:pw2).")
        pairs.append((user.strip(), password))
    return pairs


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.1, ::1, localhost)."""
    host = host.strip().strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything, so treat it as public


def check_exposure(settings: Settings) -> list[tuple[str, str]]:
    """The logins to require; refuses a public studio without one unless told it is on purpose."""
    logins = parse_auth(settings.auth)
    public = settings.share or not is_loopback(settings.host)
    if public and not logins:
        where = "a public share link" if settings.share else f"address {settings.host}"
        if not settings.insecure_no_auth:
            raise ExposureError(
                f"Refusing to serve on {where} without a login: add --auth user:password "
                "(or set STUDIO_AUTH), or pass --insecure-no-auth if that is really intended."
            )
        log.warning(
            "Serving on %s WITHOUT a login (--insecure-no-auth): anyone who can reach it can "
            "use this machine and see every clip.",
            where,
        )
    return logins


def allowed_paths(settings: Settings) -> list[str]:
    """The only folders the web server may serve files from (besides Gradio's own upload cache)."""
    return [str(settings.outputs_dir.resolve()), str(settings.examples_dir.resolve())]


def blocked_paths(settings: Settings) -> list[str]:
    """Inside the served folders, what must still never be served: the History database."""
    return [str(settings.outputs_dir.resolve() / STATE_DIR)]


NOT_UPLOADED = "That file was not uploaded to the studio; please upload it again."
# Deliberately the same sentence for every refusal, and never the path: an error that says
# "is a folder" or "can't find" tells a stranger what exists on the server's disk.


def uploaded_file(path: object, upload_dir: str | Path) -> Path:
    """The real path of a regular file inside the web server's upload folder, or a refusal.

    Gradio checks only file inputs that are marked as its own FileData; a client can send a
    bare {"path": ...} instead, so every file input goes through this.
    """
    if not isinstance(path, str | Path) or not str(path) or "\0" in str(path):
        raise UploadError(NOT_UPLOADED)
    if len(str(path)) > 4096:
        raise UploadError(NOT_UPLOADED)
    real = Path(os.path.realpath(path))
    root = Path(os.path.realpath(upload_dir))
    if real == root or not real.is_relative_to(root):
        raise UploadError(NOT_UPLOADED)
    try:
        if not stat.S_ISREG(real.stat().st_mode):
            raise UploadError(NOT_UPLOADED)
    except OSError:
        raise UploadError(NOT_UPLOADED) from None
    return real


def serves_others(settings: Settings) -> bool:
    """True when people other than the machine's owner can use the studio (logins, a public
    address or a share link): then their input must not reach the server's own files."""
    return bool(settings.auth) or settings.share or not is_loopback(settings.host)


def model_folder(text: object, settings: Settings) -> str:
    """The model folder a web user typed, checked: "" for none.

    The machine's own user may name any folder. Anyone else may only name a folder inside
    the studio's models folder, and the errors they see never show a server path.
    """
    if text is None:
        return ""
    if not isinstance(text, str):
        raise StudioError("The model folder must be a folder name.")
    text = text.strip()
    if not text:
        return ""
    if len(text) > 1024 or "\0" in text or any(len(p) > 255 for p in Path(text).parts):
        raise StudioError("That model folder name is too long.")
    if not serves_others(settings):
        return text
    root = Path(os.path.realpath(settings.models_dir))
    real = Path(os.path.realpath(root / text))
    if real == root or not real.is_relative_to(root):
        raise StudioError(
            "Only folders inside the studio's models folder can be used from the web; "
            "give the folder's name inside it, or ask whoever runs the studio to add it."
        )
    try:
        found = (real / "model_index.json").is_file()
    except OSError:
        found = False
    if not found:
        raise StudioError(
            f"There is no diffusers model called '{clip_text(text)}' in the studio's models folder."
        )
    return str(real)
