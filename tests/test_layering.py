"""The walls of the composed engine, read from the source with ``ast`` (nothing is imported):
the web package has no import circle; the command line, the web app and the batch reach into
nobody's private names; the services and the façade call no other module's private names, and
no service imports what sits above it."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from helpers import ROOT

ENGINE = ROOT / "engine"
FRONTS = sorted((ENGINE / "web").glob("*.py")) + [ENGINE / "cli.py", ENGINE / "batch.py"]
SERVICES = sorted((ENGINE / "services").glob("*.py"))
OWN = ("self", "cls")


def tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def imported_modules(path: Path, package: str) -> set[str]:
    """The dotted names of the modules ``path`` imports (also inside functions), resolved
    against ``package`` (the module's own package, e.g. ``engine.web``)."""
    out: set[str] = set()
    for node in ast.walk(tree(path)):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            out.add(stem)
            out |= {f"{stem}.{a.name}" for a in node.names}  # `from . import api`
    return out


def reaches(path: Path, allowed: set[str] = frozenset(), root: Path = ROOT) -> list[str]:
    """``x._name`` on anything but ``self``/``cls``, and ``from m import _name``, in ``path``
    (line by line); names in ``allowed`` (the module's own) are not a reach."""
    found = []
    for node in ast.walk(tree(path)):
        if isinstance(node, ast.Attribute) and private(node.attr) and node.attr not in allowed \
                and not (isinstance(node.value, ast.Name) and node.value.id in OWN):
            found.append((node.lineno, f".{node.attr}"))
        elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
            found += [(node.lineno, f"import {a.name}") for a in node.names if private(a.name)]
    return [f"{path.relative_to(root)}:{line}: {what}" for line, what in sorted(found)]


def own_names(path: Path) -> set[str]:
    """The private names a module defines: functions, classes, methods, attributes it sets."""
    names = set()
    for node in ast.walk(tree(path)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return {n for n in names if private(n)}


def test_the_web_package_has_no_import_circle():
    modules = {p.stem for p in (ENGINE / "web").glob("*.py")}
    graph = {m: {name.split(".")[2] for name in imported_modules(ENGINE / "web" / f"{m}.py",
                                                                  "engine.web")
                 if name.startswith("engine.web.") and name.split(".")[2] in modules} - {m}
             for m in modules}
    assert {"api", "pages"} <= graph["app"]   # the check reads the imports it should

    def circle(start: str, path: list[str]) -> list[str] | None:
        for nxt in sorted(graph[start]):
            if nxt in path:
                return path[path.index(nxt):] + [nxt]
            found = circle(nxt, path + [nxt])
            if found:
                return found
        return None

    circles = [c for m in sorted(modules) if (c := circle(m, [m]))]
    assert circles == [], " → ".join(circles[0])


@pytest.mark.parametrize("path", FRONTS, ids=lambda p: str(p.relative_to(ENGINE)))
def test_the_fronts_reach_into_no_private_names(path):
    """What the issue's ``grep -rn "\\._[a-z]" engine/web engine/batch.py engine/cli.py``
    looks for, but for ``self._…`` (an object's own)."""
    assert reaches(path) == []


@pytest.mark.parametrize("path", [*SERVICES, ENGINE / "engine.py"],
                         ids=lambda p: str(p.relative_to(ENGINE)))
def test_services_call_no_other_module_s_private_names(path):
    assert reaches(path, own_names(path)) == []


@pytest.mark.parametrize("path", SERVICES, ids=lambda p: str(p.relative_to(ENGINE)))
def test_services_import_nothing_above_them(path):
    above = ("engine.engine", "engine.web", "engine.cli", "engine.batch")
    imports = imported_modules(path, "engine.services")
    assert [m for m in sorted(imports) if m.startswith(above)] == []


def test_the_checks_catch_what_they_look_for(tmp_path):
    """The walls would fall: a private import, a reach into another object, a module's own
    name used on another object; ``self._…`` is no reach."""
    sample = tmp_path / "sample.py"
    sample.write_text("from .pages import _CASE_ID\n"
                      "def _helper(engine, self):\n"
                      "    self._mine()\n"
                      "    return engine._facts(), engine._helper(), engine.public\n",
                      encoding="utf-8")
    assert reaches(sample, root=tmp_path) == [
        "sample.py:1: import _CASE_ID", "sample.py:4: ._facts", "sample.py:4: ._helper"]
    assert reaches(sample, own_names(sample), root=tmp_path) == [
        "sample.py:1: import _CASE_ID", "sample.py:4: ._facts"]
    assert "engine.web.pages._CASE_ID" in imported_modules(sample, "engine.web")
