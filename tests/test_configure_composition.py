"""`configure()` is the one place where the configuration and the sinks meet: no import cycle."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import payi_web

PACKAGE = Path(payi_web.__file__).parent


def _imported_modules(path: Path) -> set[str]:
    """Every module `path` imports (relative ones as written, e.g. '.ledger'), anywhere in it."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_the_configuration_module_knows_nothing_of_the_sinks() -> None:
    imported = _imported_modules(PACKAGE / "core" / "config.py")
    assert not {name for name in imported if "ledger" in name or "ingest" in name or "records" in name}


def test_the_sinks_setups_do_not_import_configure() -> None:
    for setup in (PACKAGE / "ledger" / "setup.py", PACKAGE / "ingest" / "setup.py"):
        assert not {name for name in _imported_modules(setup) if "config" in name}, setup


def test_the_first_use_without_configure_installs_the_default_ledger(tmp_path: Path) -> None:
    # A fresh interpreter: nothing has called configure(); the first record's path does it.
    script = (
        "import payi_web\n"
        "from payi_web.ledger import installed_sink\n"
        "assert installed_sink() is None\n"
        "config = payi_web.current_config()\n"
        "sink = installed_sink()\n"
        "assert sink is not None and sink.path == config.ledger, (sink, config)\n"
    )
    env = {"PATH": "", "PAYI_LEDGER": str(tmp_path / "first.sqlite3")}
    subprocess.run([sys.executable, "-c", script], check=True, env=env, cwd=PACKAGE.parent, timeout=60)
