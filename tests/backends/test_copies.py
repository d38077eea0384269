"""Family files stay self-contained: code marked "# Copied from" is kept identical to its source."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import textwrap
from pathlib import Path

BACKENDS = Path(__file__).resolve().parents[2] / "studio" / "backends"
MARK = re.compile(r"^\s*# Copied from (studio\.backends\.\w+)\.(\w+)\.(\w+)\s*$")


def _body(source: str) -> str:
    """A function's code without its comment lines, to compare copies by what they do."""
    return ast.dump(ast.parse(textwrap.dedent(source)).body[0])


def test_copied_code_matches_its_source():
    copies = 0
    for path in sorted(BACKENDS.glob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines):
            mark = MARK.match(line)
            if not mark:
                continue
            module, cls, func = mark.groups()
            source = getattr(getattr(importlib.import_module(module), cls), func)
            copy_module = importlib.import_module(f"studio.backends.{path.stem}")
            name = lines[i + 1].split("def ")[1].split("(")[0]
            owner = next(v for v in vars(copy_module).values() if inspect.isclass(v)
                         and v.__module__ == copy_module.__name__ and name in vars(v))  # fmt: skip
            copy = getattr(owner, name)
            assert _body(inspect.getsource(copy)) == _body(inspect.getsource(source)), path.name
            copies += 1
    assert copies >= 1  # skyreels.py copies wan.py
