"""Run a function when a module is first imported, whoever imports it and whenever.

`instrument()` patches httpx only if the process uses it: importing it just to patch it would
cost every app that calls its GenAI SDK through httpx2 (openai >= 3, anthropic >= 1) ~140 ms
at start-up, and make that SDK check for legacy httpx clients on every call.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import threading
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

__all__ = ["after_import"]

_lock = threading.Lock()


class _Finder(importlib.abc.MetaPathFinder):
    def __init__(self, name: str, then: Callable[[ModuleType], None]) -> None:
        self.name = name
        self.then = then

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.name:
            return None
        with _lock:  # once: the finders below must not find this one again
            if self not in sys.meta_path:
                return None
            sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _Loader(spec.loader, self.then)
        return spec


class _Loader(importlib.abc.Loader):
    """The module's own loader, and `then` once the module is executed."""

    def __init__(self, loader: importlib.abc.Loader, then: Callable[[ModuleType], None]) -> None:
        self._loader = loader
        self._then = then

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        self._then(module)

    def __getattr__(self, name: str) -> Any:  # get_data, get_resource_reader, is_package, ...
        return getattr(self._loader, name)


def after_import(name: str, then: Callable[[ModuleType], None]) -> None:
    """Call `then(module)` now if `name` is imported already, else right after its import (if ever)."""
    if sys.modules.get(name) is None and importlib.util.find_spec(name) is None:
        return  # not installed
    finder = _Finder(name, then)
    # The finder first, then the look: an import by another thread in between is not missed.
    sys.meta_path.insert(0, finder)
    module = sys.modules.get(name)
    if module is not None:
        with _lock:
            if finder not in sys.meta_path:
                return  # the finder took that import: `then` runs once it is done
            sys.meta_path.remove(finder)
        then(module)
