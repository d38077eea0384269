"""The studio's web UI: layout.py wires the page, handlers.py answers it, components.py guards it."""

from studio.ui.layout import build_ui, css

__all__ = ["build_ui", "css"]
