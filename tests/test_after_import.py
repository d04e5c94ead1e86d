"""`instrument()` adopts httpx/httpx2 when the app imports them: the import hook behind it."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from payi_web.core.after_import import after_import


@pytest.fixture
def module_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    name = f"payi_web_late_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    hooks = list(sys.meta_path)
    yield name
    sys.modules.pop(name, None)
    assert sys.meta_path == hooks, "a hook was left behind"


def test_a_module_imported_later_is_handed_over_once_after_it_ran(module_name: str) -> None:
    seen: list[ModuleType] = []
    after_import(module_name, seen.append)
    assert seen == []
    module = importlib.import_module(module_name)
    assert seen == [module] and module.VALUE == 1
    importlib.reload(module)
    assert seen == [module]  # once


def test_a_module_imported_already_is_handed_over_at_once(module_name: str) -> None:
    module = importlib.import_module(module_name)
    seen: list[ModuleType] = []
    after_import(module_name, seen.append)
    assert seen == [module]


def test_a_module_imported_elsewhere_while_the_hook_is_set_is_not_missed(
    module_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another thread's import landing between the hook's first look and its finder's insertion,
    # made deterministic: it happens inside that first look.
    real_find_spec = importlib.util.find_spec

    def find_spec_while_another_thread_imports(name: str, package: str | None = None) -> Any:
        spec = real_find_spec(name, package)
        if name == module_name and name not in sys.modules:
            importlib.import_module(name)
        return spec

    monkeypatch.setattr(importlib.util, "find_spec", find_spec_while_another_thread_imports)
    seen: list[ModuleType] = []
    after_import(module_name, seen.append)
    assert seen == [sys.modules[module_name]]


def test_a_module_not_installed_is_ignored() -> None:
    hooks = list(sys.meta_path)
    after_import("payi_web_no_such_module", lambda module: pytest.fail("called"))
    assert sys.meta_path == hooks
