"""Start the Motion Studio web UI: parse flags, build the UI, launch. No logic here."""

from __future__ import annotations

import argparse
import logging

from studio.settings import Settings


def main(argv: list[str] | None = None) -> None:
    defaults = Settings.from_env()
    parser = argparse.ArgumentParser(description="Motion Studio: photo -> four short motion clips.")
    parser.add_argument(
        "--host", default=defaults.host, help=f"address to bind (default {defaults.host})"
    )
    parser.add_argument(
        "--port", type=int, default=defaults.port, help=f"port (default {defaults.port})"
    )
    parser.add_argument(
        "--share", action="store_true", default=defaults.share, help="create a public Gradio link"
    )
    parser.add_argument("--auth", default=None, metavar="USER:PASS",
                        help="require a login (or STUDIO_AUTH); several as alice:pw1,bob:pw2")  # fmt: skip
    parser.add_argument("--insecure-no-auth", action="store_true", default=None,
                        help="allow --share or a non-loopback --host without a login")  # fmt: skip
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from studio import retention, security
    from studio.errors import StudioError

    settings = Settings.from_env(host=args.host, port=args.port, share=args.share, auth=args.auth,
                                 insecure_no_auth=args.insecure_no_auth)  # fmt: skip
    try:
        logins = security.check_exposure(settings)
    except StudioError as exc:
        parser.exit(2, f"error: {exc}\n")
    retention.start(settings)  # stray temp files, History vs disk, then a periodic sweep

    from studio.ui import build_ui

    demo = build_ui(settings)
    demo.queue(default_concurrency_limit=1, max_size=settings.max_queue)
    demo.launch(
        server_name=settings.host,
        server_port=settings.port,
        share=settings.share,
        css=demo.studio_css,
        auth=logins or None,
        allowed_paths=security.allowed_paths(settings),
        blocked_paths=security.blocked_paths(settings),
        max_file_size=settings.max_upload_mb * 1024 * 1024,
        show_error=True,
    )


if __name__ == "__main__":
    main()
