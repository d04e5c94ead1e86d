"""The package's shape holds: a framework-free core, integrations on the public extension points,
another library's private attributes read only in `_compat`, and small files and functions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import payi_web

PACKAGE = Path(payi_web.__file__).parent
SOURCES = sorted(PACKAGE.rglob("*.py"))
FRAMEWORKS = (
    "django",
    "flask",
    "flask_login",
    "werkzeug",
    "asgiref",
    "httpx",
    "httpx2",
    "openai",
    "anthropic",
)


def _imports(path: Path) -> list[tuple[int, str]]:
    """(level, module) of every import in `path`: level 0 for absolute ones."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            found.append((node.level, node.module or ""))
        elif isinstance(node, ast.Import):
            found.extend((0, alias.name) for alias in node.names)
    return found


@pytest.mark.parametrize("path", sorted((PACKAGE / "core").glob("*.py")), ids=lambda p: p.name)
def test_the_core_imports_no_framework_http_library_or_sdk(path: Path) -> None:
    absolute = {module.split(".")[0] for level, module in _imports(path) if level == 0}
    assert not absolute & set(FRAMEWORKS), path
    # Within the core, and the compat shims of the standard library.
    inside = [module for level, module in _imports(path) if level > 1]
    assert all(module.startswith(("core", "_compat.stdlib")) for module in inside), path


@pytest.mark.parametrize("adapter", ["django", "flask"])
def test_the_web_adapters_use_the_public_extension_points(adapter: str) -> None:
    for path in (PACKAGE / adapter).rglob("*.py"):
        for level, module in _imports(path):
            if level >= 2 or (level == 1 and path.parent != PACKAGE / adapter):
                assert not module.startswith("core"), f"{path}: imports payi_web.{module}"


def test_files_stay_under_400_lines_and_functions_under_60() -> None:
    long_files = [str(p) for p in SOURCES if len(p.read_text().splitlines()) > 400]
    long_functions = [
        f"{p.name}:{node.name} ({node.end_lineno - node.lineno + 1} lines)"  # type: ignore[operator]
        for p in SOURCES
        for node in ast.walk(ast.parse(p.read_text()))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 60  # type: ignore[operator]
    ]
    assert (long_files, long_functions) == ([], [])
