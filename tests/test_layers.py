"""The layer rules of DESIGN.md, checked on the source: dependencies point down only.

basics (config, errors, names) → tensors → catalog → domain modules → interfaces.
Every import counts: at module level, inside functions, under ``TYPE_CHECKING``, and
lazy imports named by a string (``"weightbase.tensors.objects.s3"`` for
``import_module``). Interfaces are cli, api, ui, remote (the client of the server) and
the facade (``weightbase``, ``weightbase.workspace``); everything not named here is a
domain module."""

from __future__ import annotations

import ast
import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "weightbase"
MAX_MODULE_LINES = 600
# Generated, one file per schema change, never edited by hand.
SIZE_EXEMPT = ("catalog/migrations/",)

BASICS = frozenset({"config", "errors", "names"})
INTERFACES = frozenset({"cli", "api", "ui", "remote", "workspace", "__init__", "__main__"})

_MODULE_NAME = re.compile(r"weightbase(\.\w+)+")


@dataclass(frozen=True)
class Import:
    """One module importing another, where it does so."""

    importer: str
    imported: str
    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.importer} imports {self.imported}"


def layer(module: str) -> str:
    """``tensors``, ``catalog``, ``basics``, ``interface`` or ``domain``."""
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    if top in ("tensors", "catalog"):
        return top
    if top in BASICS:
        return "basics"
    if top in INTERFACES:
        return "interface"
    return "domain"


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def _resolve(module: str, is_package: bool, level: int, target: str | None) -> str:
    """The absolute name of ``from <level dots><target> import ...`` inside ``module``."""
    if level == 0:
        return target or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, target] if target else base)


def imports_in(
    source: str, module: str, path: str, known: frozenset[str], is_package: bool = False
) -> list[Import]:
    """Every import of a ``weightbase`` module in ``source``, the source of ``module``.

    ``from a import b`` imports ``a.b`` when that is a module in ``known``, else ``a``.
    """
    found = []
    for node in ast.walk(ast.parse(source, filename=path)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            origin = _resolve(module, is_package, node.level, node.module)
            names = [
                f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in known else origin
                for alias in node.names
            ]
        elif (
            # a lazy import by name; a dotted name only, so a logger called "weightbase" is not one
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and _MODULE_NAME.fullmatch(node.value)
            and node.value in known
        ):
            names = [node.value]
        found += [
            Import(module, name, path, node.lineno)
            for name in dict.fromkeys(names)
            if name == "weightbase" or name.startswith("weightbase.")
        ]
    return sorted(found, key=lambda found: found.line)


@functools.cache
def _modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


@functools.cache
def _imports(module: str) -> tuple[Import, ...]:
    path = _modules()[module]
    return tuple(
        imports_in(
            path.read_text(encoding="utf-8"),
            module,
            str(path.relative_to(PACKAGE.parents[1])),
            frozenset(_modules()),
            is_package=path.name == "__init__.py",
        )
    )


def violations(
    module: str, forbidden: set[str], imports: tuple[Import, ...] | None = None
) -> list[str]:
    """The imports of ``module`` that reach a layer in ``forbidden``, one line each."""
    if imports is None:
        imports = _imports(module)
    return [str(found) for found in imports if layer(found.imported) in forbidden]


def _relative(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def _modules_in(in_layer: str) -> list[Any]:
    return [
        pytest.param(module, id=_relative(path))
        for module, path in _modules().items()
        if layer(module) == in_layer
    ]


def _sized_modules() -> list[Any]:
    return [
        pytest.param(
            path,
            id=_relative(path),
        )
        for path in _modules().values()
        if not _relative(path).startswith(SIZE_EXEMPT)
    ]


@pytest.mark.parametrize("module", _modules_in("basics"))
def test_basics_import_only_basics(module: str) -> None:
    """config, errors and names sit below tensors, which may import them."""
    found = violations(module, {"tensors", "catalog", "domain", "interface"})
    assert not found, "\n".join(found)


@pytest.mark.parametrize("module", _modules_in("tensors"))
def test_tensors_import_no_catalog_domain_or_interface(module: str) -> None:
    found = violations(module, {"catalog", "domain", "interface"})
    assert not found, "\n".join(found)


@pytest.mark.parametrize("module", _modules_in("catalog"))
def test_catalog_imports_no_domain_or_interface(module: str) -> None:
    found = violations(module, {"domain", "interface"})
    assert not found, "\n".join(found)


@pytest.mark.parametrize("module", _modules_in("domain"))
def test_domains_import_no_interface(module: str) -> None:
    found = violations(module, {"interface"})
    assert not found, "\n".join(found)


@pytest.mark.parametrize("path", _sized_modules())
def test_modules_are_at_most_600_lines(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"{_relative(path)} has {lines} lines"


def test_every_layer_has_modules() -> None:
    """A moved package must not leave a rule above checking nothing."""
    layers = {layer(module) for module in _modules()}
    assert layers >= {"tensors", "catalog", "domain", "interface", "basics"}


def test_layers_of_names() -> None:
    assert layer("weightbase") == "interface"
    assert layer("weightbase.workspace") == "interface"
    assert layer("weightbase.cli.models") == "interface"
    assert layer("weightbase.tensors.objects.s3") == "tensors"
    assert layer("weightbase.catalog.schema") == "catalog"
    assert layer("weightbase.errors") == "basics"
    assert layer("weightbase.events") == "domain"
    assert layer("weightbase.governance.audit") == "domain"


def test_the_checker_finds_every_kind_of_import() -> None:
    source = """
from __future__ import annotations

import json
from typing import TYPE_CHECKING

from weightbase.errors import NotFound
from . import chunks

if TYPE_CHECKING:
    from weightbase.catalog import Catalog

def read():
    from ..registry import service
    import weightbase.cli.models as models

BACKENDS = {"s3": "weightbase.tensors.objects.s3", "note": "weightbase.not.a.module"}
"""
    known = frozenset(
        {
            "weightbase",
            "weightbase.errors",
            "weightbase.catalog",
            "weightbase.cli",
            "weightbase.cli.models",
            "weightbase.registry",
            "weightbase.registry.service",
            "weightbase.tensors",
            "weightbase.tensors.chunks",
            "weightbase.tensors.objects.s3",
        }
    )
    imports = tuple(imports_in(source, "weightbase.tensors.store", "store.py", known))
    assert [str(found) for found in imports] == [
        "store.py:7: weightbase.tensors.store imports weightbase.errors",
        "store.py:8: weightbase.tensors.store imports weightbase.tensors.chunks",
        "store.py:11: weightbase.tensors.store imports weightbase.catalog",
        "store.py:14: weightbase.tensors.store imports weightbase.registry.service",
        "store.py:15: weightbase.tensors.store imports weightbase.cli.models",
        "store.py:17: weightbase.tensors.store imports weightbase.tensors.objects.s3",
    ]
    assert violations("weightbase.tensors.store", {"catalog", "domain", "interface"}, imports) == [
        "store.py:11: weightbase.tensors.store imports weightbase.catalog",
        "store.py:14: weightbase.tensors.store imports weightbase.registry.service",
        "store.py:15: weightbase.tensors.store imports weightbase.cli.models",
    ]


def test_relative_imports_resolve_from_a_package_init() -> None:
    known = frozenset({"weightbase.catalog", "weightbase.events", "weightbase.catalog.schema"})
    source = "from .schema import Base\nfrom .. import events\n"
    imports = imports_in(source, "weightbase.catalog", "__init__.py", known, is_package=True)
    assert [found.imported for found in imports] == [
        "weightbase.catalog.schema",
        "weightbase.events",
    ]
