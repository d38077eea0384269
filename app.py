"""Start the Motion Studio web UI: parse flags, build the UI, launch. No logic here."""

from __future__ import annotations

import argparse
import logging

from studio.settings import Settings


def main(argv: list[str] | None = None) -> None:
    defaults = Settings.from_env()
    parser = argparse.ArgumentParser(description="Motion Studio: photo -> four short motion clips.")
    parser.add_argument("--host", default=defaults.host, help=f"address to bind (default {defaults.host})")
    parser.add_argument("--port", type=int, default=defaults.port, help=f"port (default {defaults.port})")
    parser.add_argument("--share", action="store_true", default=defaults.share, help="create a public Gradio link")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from studio.ui import build_ui

    settings = Settings.from_env(host=args.host, port=args.port, share=args.share)
    demo = build_ui(settings)
    demo.queue(default_concurrency_limit=1)
    demo.launch(
        server_name=settings.host,
        server_port=settings.port,
        share=settings.share,
        css=demo.studio_css,
        allowed_paths=[str(settings.outputs_dir), str(settings.examples_dir)],
        max_file_size=settings.max_upload_mb * 1024 * 1024,
        show_error=True,
    )


if __name__ == "__main__":
    main()
