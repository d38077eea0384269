"""The web server's own guards: each login sees only its own files, and password guessing is slowed.

Gradio serves any allowed file to any logged-in user, so with logins a request for a file is
checked here against who made it: files inside the outputs folder by the owner their job
folder names (studio.serve.ownership), and Gradio's cached copies by the record of whom each copy
was handed to (History.grant). Without logins the guard lets everything through unchanged.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path

from studio.serve import ownership
from studio.serve.history import History, open_history
from studio.settings import Settings

log = logging.getLogger(__name__)

FILE_ROUTES = ("/gradio_api/file=", "/gradio_api/file/", "/file=", "/file/")
LOGIN_ROUTES = ("/login", "/login/")
MAX_BACKOFF_S = 300.0


def cache_key(path: str | os.PathLike[str]) -> str:
    """The folder name Gradio gives its cached copy of a file (a keyed hash of its bytes)."""
    from gradio.processing_utils import hash_file

    return hash_file(path)


def hand_out(history: History, paths, owner: str) -> None:
    """Record that these files are being shown to this owner, so that their cached copies can
    be served to them (and to nobody else). Nothing to record without logins."""
    if owner == ownership.LOCAL:
        return
    for path in paths:
        if path:
            try:
                history.grant(cache_key(path), owner)
            except OSError:
                log.warning("Could not record a served file for its owner", exc_info=True)


class LoginThrottle:
    """Failed logins per client address: a few are free, then each try waits, doubling."""

    def __init__(self, free: int, backoff_s: float, clock=time.monotonic):
        self.free, self.backoff_s, self.clock = max(0, free), max(0.0, backoff_s), clock
        self._failures: dict[str, tuple[int, float]] = {}  # client -> (count, last failure)
        self._lock = threading.Lock()

    def wait_s(self, client: str) -> float:
        """Seconds this client must still wait before its next try (0: it may try now)."""
        with self._lock:
            count, last = self._failures.get(client, (0, 0.0))
        if count < self.free or self.backoff_s <= 0:
            return 0.0
        delay = min(MAX_BACKOFF_S, self.backoff_s * 2 ** (count - self.free))
        return max(0.0, last + delay - self.clock())

    def failed(self, client: str) -> int:
        with self._lock:
            count = self._failures.get(client, (0, 0.0))[0] + 1
            self._failures[client] = (count, self.clock())
            if len(self._failures) > 10_000:  # a flood of addresses must not grow memory forever
                oldest = min(self._failures, key=lambda c: self._failures[c][1])
                del self._failures[oldest]
            return count

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)


class WebGuard:
    """ASGI middleware in front of Gradio's routes (pure ASGI, so streaming is untouched)."""

    def __init__(self, app, settings: Settings, throttle: LoginThrottle | None = None):
        self.app = app
        self.settings = settings
        self.logins = bool(settings.auth)
        self.outputs = Path(os.path.realpath(settings.outputs_dir))
        self.throttle = throttle or LoginThrottle(
            settings.login_free_attempts, settings.login_backoff_s
        )
        self._history: History | None = None

    @property
    def history(self) -> History:
        if self._history is None:
            self._history = open_history(self.outputs)
        return self._history

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not self.logins:
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        if scope.get("method") == "POST" and path in LOGIN_ROUTES:
            return await self._login(scope, receive, send)
        if scope.get("method") in ("GET", "HEAD"):
            for prefix in FILE_ROUTES:
                if path.startswith(prefix):
                    if not self._may_read(scope, path[len(prefix) :]):
                        return await _respond(send, 404, {"detail": "File not found."})
                    break
        return await self.app(scope, receive, send)

    # -- files

    def _may_read(self, scope, requested: str) -> bool:
        user = _current_user(scope)
        if user is None:
            return True  # not logged in: Gradio's own login check answers
        owner = ownership.owner_id(user)
        # The ASGI path is already percent-decoded, exactly as Gradio's file route reads it:
        # decoding again would check a different path from the one Gradio serves.
        target = requested
        if target.startswith(("http://", "https://")):
            return True
        real = os.path.realpath(target)
        found = ownership.owner_of_path(real, self.outputs)
        if found is not None:
            return found == owner
        from gradio.utils import get_upload_folder

        cache = Path(os.path.realpath(get_upload_folder()))
        try:
            parts = Path(real).relative_to(cache).parts
        except ValueError:
            return True  # neither ours nor a cached copy: Gradio's allow-list decides
        if len(parts) < 2:
            return True
        owners = self.history.granted(parts[0])
        return not owners or owner in owners

    # -- logins

    async def _login(self, scope, receive, send):
        client = (scope.get("client") or ("unknown", 0))[0]
        wait = self.throttle.wait_s(client)
        if wait > 0:
            log.warning("Login refused for %s: too many failed logins (wait %.0f s).", client, wait)
            return await _respond(
                send,
                429,
                {"detail": f"Too many failed logins; try again in {max(1, round(wait))} s."},
                headers=[(b"retry-after", str(max(1, round(wait))).encode())],
            )
        status = {}

        async def watch(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        await self.app(scope, receive, watch)
        if status.get("code") == 200:
            self.throttle.succeeded(client)
        elif status.get("code") in (400, 401, 403):
            count = self.throttle.failed(client)
            log.warning("Failed login from %s (%d in a row).", client, count)


def _current_user(scope) -> str | None:
    """The login of the request, from Gradio's session cookie (None when not logged in)."""
    app = scope.get("app")
    tokens = getattr(app, "tokens", None)
    cookie_id = getattr(app, "cookie_id", None)
    if tokens is None or cookie_id is None:
        return None
    cookies = {}
    for name, value in scope.get("headers", ()):
        if name == b"cookie":
            for part in value.decode("latin-1").split(";"):
                key, _, val = part.strip().partition("=")
                cookies[key] = val
    token = cookies.get(f"access-token-{cookie_id}") or cookies.get(
        f"access-token-unsecure-{cookie_id}"
    )
    return tokens.get(token) if token else None


async def _respond(send, code: int, body: dict, headers: list | None = None) -> None:
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": code,
            "headers": [(b"content-type", b"application/json"),
                        (b"content-length", str(len(data)).encode()), *(headers or [])],
        }
    )  # fmt: skip
    await send({"type": "http.response.body", "body": data})


def middleware(settings: Settings) -> list:
    """What app.py hands to Gradio's launch(app_kwargs={"middleware": ...})."""
    from starlette.middleware import Middleware

    return [Middleware(WebGuard, settings=settings)]
