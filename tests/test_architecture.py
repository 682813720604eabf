"""The package map of ARCHITECTURE.md, checked: what each package may import from the project."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIRST_PARTY = ("flows", "schemas", "transforms")

# package -> first-party packages it may import (a prefix allows its sub-packages); itself always allowed
MAY_IMPORT = {
    "transforms": (),
    "schemas": ("transforms",),
    "flows.storage": ("schemas", "flows.config", "flows.errors"),
    "flows.sources": ("transforms", "schemas", "flows.config", "flows.errors"),
    "flows.market": ("transforms",),
    "flows.stages": (
        "transforms",
        "schemas",
        "flows.sources",
        "flows.storage",
        "flows.report",
        "flows.config",
        "flows.errors",
    ),
    "flows.report": ("transforms", "schemas", "flows.storage", "flows.config", "flows.errors"),
}
# Prefect is the orchestrator's business: only these modules import it.
PREFECT_USERS = {"flows.nightly", "flows.deployment", "flows.cli.app", "flows.cli.launcher"}


def _module(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _package(module: str) -> str | None:
    matches = [p for p in MAY_IMPORT if module == p or module.startswith(p + ".")]
    return max(matches, key=len) if matches else None


MODULES = sorted(p for pkg in FIRST_PARTY for p in (ROOT / pkg).rglob("*.py"))


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_follow_the_package_map(path: Path) -> None:
    module = _module(path)
    package = _package(module)
    imported = _imports(path)
    if package is not None:
        allowed = (package, *MAY_IMPORT[package])
        first_party = {name for name in imported if name.split(".")[0] in FIRST_PARTY}
        # "from flows import x" names the package flows itself: judge it by the module it brings in
        wrong = sorted(
            n
            for n in first_party
            if n not in FIRST_PARTY
            and not any(_within(n, a) for a in allowed)
            and not any(_within(a, n) for a in allowed)
        )
        assert not wrong, f"{module} ({package}) imports {wrong}; ARCHITECTURE.md allows {allowed}"
    if module not in PREFECT_USERS:
        assert not any(_within(n, "prefect") for n in imported), f"{module} imports Prefect"


def test_the_map_covers_every_package() -> None:
    packages = {_module(p.parent / "__init__.py") for p in MODULES if p.name == "__init__.py"}
    unmapped = sorted(p for p in packages if _package(p) is None and p not in {"flows", "flows.cli"})
    assert unmapped == [], f"packages missing from MAY_IMPORT (and ARCHITECTURE.md): {unmapped}"
