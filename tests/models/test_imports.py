"""The layout holds: models never import the layers above them, no import cycle, no private reach."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STUDIO = ROOT / "studio"


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, str]]:
    """(module, name) for every studio import in a file, at module level or inside functions."""
    package = (
        _module(path).split(".") if path.name == "__init__.py" else _module(path).split(".")[:-1]
    )
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(a.name, "") for a in node.names if a.name.startswith("studio")]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            if base.startswith("studio"):
                found += [(base, a.name) for a in node.names]
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module(p): p for p in STUDIO.rglob("*.py")}

    def owner(name: str) -> str:
        while name not in modules and "." in name:
            name = name.rsplit(".", 1)[0]
        return name

    graph = {}
    for name, path in modules.items():
        deps = set()
        for module, imported in _imports(path):
            full = f"{module}.{imported}"
            deps.add(full if full in modules else owner(module))
        graph[name] = deps - {name}
    return graph


def test_models_and_ui_modules_do_not_import_torch():
    code = "import sys, studio.models, studio.backends; studio.backends.list_backends(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_model_service_never_imports_the_layers_that_use_it():
    upward = ("studio.backends", "studio.ui", "studio.serve", "studio.jobs", "studio.clips",
              "studio.motion", "studio.shootout", "studio.vision")  # fmt: skip
    reaches = [(m, dep) for m, deps in _graph().items() if m.startswith("studio.models")
               for dep in deps if dep.startswith(upward)]  # fmt: skip
    assert reaches == []


def test_no_import_cycle_in_the_studio():
    graph = _graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                cycles.append(path[path.index(dep) :] + [dep])
            elif dep not in state:
                visit(dep, [*path, dep])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    # A package's __init__ re-exporting its own modules is not a cycle between modules.
    cycles = [c for c in cycles if len({n.split(".")[1] if "." in n else n for n in c}) > 1]
    assert cycles == []


def test_no_module_imports_another_modules_private_names():
    reaches = []
    for path in STUDIO.rglob("*.py"):
        for module, name in _imports(path):
            if name.startswith("_") and not name.startswith("__"):
                reaches.append(f"{_module(path)}: from {module} import {name}")
        # Only an object's own methods use its private attributes (self._x, cls._x).
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            private = isinstance(node, ast.Attribute) and node.attr.startswith("_")
            if private and not node.attr.startswith("__"):
                base = ast.unparse(node.value)
                if base not in ("self", "cls"):
                    reaches.append(f"{_module(path)} line {node.lineno}: {base}.{node.attr}")
    assert reaches == []
