"""Every public class and function has a docstring (issue 11 item 6): module-level
functions and classes, and the methods of public classes, in the packages below. Public
means a name not starting with "_"; dunder methods are left out. Read with the standard
library's ``ast``, so nothing is imported.
"""
from __future__ import annotations

import ast

from tests.helpers import ROOT

PACKAGES = ("api", "workers", "browser", "storage", "models", "services", "messaging")

_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _setter(node) -> bool:
    """A ``@x.setter`` or ``@x.deleter``: documented by its property's getter."""
    return any(isinstance(d, ast.Attribute) and d.attr in ("setter", "deleter") for d in node.decorator_list)


def undocumented() -> list[str]:
    """``path:line name`` of each public definition without a docstring."""
    missing = []

    def visit(body, path, prefix):
        for node in body:
            if not isinstance(node, _DEFS) or node.name.startswith("_") or _setter(node):
                continue
            name = f"{prefix}{node.name}"
            if ast.get_docstring(node) is None:
                missing.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}")
            if isinstance(node, ast.ClassDef):
                visit(node.body, path, f"{name}.")

    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            visit(ast.parse(path.read_text(), str(path)).body, path, "")
    return missing


def public_names() -> int:
    """How many public definitions the check covers."""
    count = 0
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            stack = [ast.parse(path.read_text(), str(path)).body]
            while stack:
                for node in stack.pop():
                    if isinstance(node, _DEFS) and not node.name.startswith("_") and not _setter(node):
                        count += 1
                        if isinstance(node, ast.ClassDef):
                            stack.append(node.body)
    return count


def test_every_public_name_has_a_docstring():
    missing = undocumented()
    assert not missing, f"{len(missing)} of {public_names()} public names lack a docstring:\n" + "\n".join(missing)
