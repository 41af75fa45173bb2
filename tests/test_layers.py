"""The layers of the code: nothing below api/ and workers/ imports them (issue 11 item 1,
in part). models/, browser/ and storage/ are imported by both sides and import neither."""
from __future__ import annotations

import ast

from tests.helpers import ROOT

LOWER = ("models", "browser", "storage")
UPPER = ("api", "workers")


def imports_of(path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_no_lower_layer_imports_api_or_workers():
    upward = []
    for package in LOWER:
        for path in sorted((ROOT / package).rglob("*.py")):
            for name in imports_of(path):
                if name.split(".")[0] in UPPER:
                    upward.append(f"{path.relative_to(ROOT)} imports {name}")
    assert upward == []
