"""Read typed fields out of one mapping of a YAML data file; every error names the file and field."""

from __future__ import annotations

from typing import Any

from studio.errors import StudioError


class FieldReader:
    """Typed access to a YAML mapping; subclasses pick the StudioError they raise."""

    error: type[StudioError] = StudioError

    def __init__(self, data: Any, where: str):
        if not isinstance(data, dict):
            raise self.error(f"{where}: expected a mapping of fields, got {type(data).__name__}.")
        self.data = data
        self.where = where

    def fail(self, name: str, why: str) -> StudioError:
        return self.error(f"{self.where}: field '{name}' {why}")

    def get(self, name: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        if name not in self.data:
            if default is ...:
                raise self.fail(name, "is missing.")
            return default
        value = self.data[name]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            want = (
                kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            )
            raise self.fail(name, f"must be a {want}, got {value!r}.")
        return value
