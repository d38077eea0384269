"""Start the Motion Studio web UI: parse flags, build the UI, launch. No logic here."""

from __future__ import annotations

import argparse
import errno
import logging
import socket

from studio.settings import Settings


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(
            f"port must be a whole number from 1 to 65535, got '{text}'"
        )
    return port


def _cannot_listen(host: str, port: int) -> str | None:
    """Why the studio could not listen on host:port, as one sentence, or None when it can.

    Binds a socket the way uvicorn does (SO_REUSEADDR, IPv6 when the host has a colon), so a
    port that only lingers in TIME_WAIT counts as free, and a listening one as busy.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return _port_busy(host, port)
        reason = exc.strerror or str(exc)
        return f"Cannot listen on {host}:{port} ({reason}); check --host and --port."
    return None


def _port_busy(host: str, port: int) -> str:
    other = port + 1 if port < 65535 else port - 1
    return (
        f"Port {port} on {host} is already in use; start with --port {other} (or set STUDIO_PORT)."
    )


def main(argv: list[str] | None = None) -> None:
    defaults = Settings.from_env()
    parser = argparse.ArgumentParser(description="Motion Studio: photo -> four short motion clips.")
    parser.add_argument(
        "--host", default=defaults.host, help=f"address to bind (default {defaults.host})"
    )
    parser.add_argument(
        "--port", type=_port, default=defaults.port, help=f"port (default {defaults.port})"
    )
    parser.add_argument(
        "--share", action="store_true", default=defaults.share, help="create a public Gradio link"
    )
    parser.add_argument("--auth", default=None, metavar="USER:PASS",
                        help="require a login (or STUDIO_AUTH); several as alice:pw1,bob:pw2")  # fmt: skip
    parser.add_argument("--insecure-no-auth", action="store_true", default=None,
                        help="allow --share or a non-loopback --host without a login")  # fmt: skip
    parser.add_argument("--ray", default=None, metavar="ADDRESS",
                        help="run every job on the Ray cluster at ADDRESS (or STUDIO_RAY_ADDRESS)")  # fmt: skip
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # Gradio's own start-up requests

    from studio.errors import StudioError
    from studio.serve import retention, security, webguard

    settings = Settings.from_env(host=args.host, port=args.port, share=args.share, auth=args.auth,
                                 insecure_no_auth=args.insecure_no_auth, ray_address=args.ray)  # fmt: skip
    try:
        logins = security.check_exposure(settings)
        if settings.ray_address:  # joined now: a wrong address is said at start, not at a job
            from studio.cluster.ray_jobs import ray_runner

            ray_runner(settings)
    except StudioError as exc:
        parser.exit(2, f"error: {exc}\n")
    # Refuse a busy port before the slow part, in a sentence that names the flag to change.
    problem = _cannot_listen(settings.host, settings.port)
    if problem:
        parser.exit(2, f"error: {problem}\n")
    retention.start(settings)  # stray temp files, History vs disk, then a periodic sweep

    from studio.ui import build_ui, css

    demo = build_ui(settings)
    demo.queue(default_concurrency_limit=1, max_size=settings.max_queue)
    try:
        demo.launch(
            server_name=settings.host,
            server_port=settings.port,
            share=settings.share,
            css=css(),
            auth=logins or None,
            allowed_paths=security.allowed_paths(settings),
            blocked_paths=security.blocked_paths(settings),
            max_file_size=settings.max_upload_mb * 1024 * 1024,
            show_error=True,
            # Per-login privacy of clips and reports, and a brake on password guessing.
            app_kwargs={"middleware": webguard.middleware(settings)},
            # quiet: no "set `share=True` in `launch()`" hint, which is not how this studio
            # shares (--share with a login); the address is printed below instead.
            quiet=True,
            prevent_thread_lock=True,
        )
    except OSError as exc:
        # Something took the port between the check above and Gradio's own bind.
        if "Cannot find empty port" not in str(exc):
            raise
        parser.exit(2, f"error: {_port_busy(settings.host, settings.port)}\n")
    print(f"Motion Studio is running at {demo.local_url.rstrip('/')}", flush=True)
    demo.block_thread()


if __name__ == "__main__":
    main()
