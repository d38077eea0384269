"""Safe to expose: who may log in, when a login is required, and which files the server may serve."""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path

from studio.errors import StudioError
from studio.history import STATE_DIR
from studio.settings import Settings

log = logging.getLogger(__name__)


class ExposureError(StudioError):
    """The studio would be reachable by others without a login."""


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


def clip_text(value: object, limit: int = 60) -> str:
    """A user-supplied value, shortened for quoting in a message (a 1 MB id stays one line)."""
    text = str(value).replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_choice(name: str, value: object, choices: list[str], hint: str = "") -> None:
    """Refuse a value that is not one of the offered choices, quoting it briefly."""
    if value not in choices:
        raise StudioError(f"Unknown {name} '{clip_text(value)}'.{hint and ' ' + hint}")


def is_inside(path: str | Path, folder: str | Path) -> bool:
    try:
        Path(path).resolve().relative_to(Path(folder).resolve())
        return True
    except ValueError:
        return False
