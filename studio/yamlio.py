"""Read YAML safely, with libyaml's C parser where PyYAML has it (about ten times faster).

The presets, the model catalog and the export targets are read on every start; with the
pure-Python parser that was a fifth of a second of each CLI run.
"""

from __future__ import annotations

from typing import Any

import yaml

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def safe_load(text: str) -> Any:
    """yaml.safe_load, through the C parser when it is installed: the same safe tags."""
    return yaml.load(text, Loader=_LOADER)  # noqa: S506 (a safe loader, C or Python)
