"""Print the table of docs/whatsapp-web.md from browser/selectors.py.

    python scripts/selector_table.py            # print the table
    python scripts/selector_table.py --write    # replace it in docs/whatsapp-web.md

Each constant becomes rows: its alternatives in order (first match wins), the comment
block above it as the purpose, the comment after each alternative as its source.
tests/test_selector_doc.py fails when the doc and the module disagree.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "browser" / "selectors.py"
DOC = ROOT / "docs" / "whatsapp-web.md"
BEGIN, END = "<!-- selector table: begin -->", "<!-- selector table: end -->"


def _comment(line: str, after: int) -> str:
    """The comment on a source line after column ``after`` (the end of the literal)."""
    hash_at = line.find("#", after)
    return line[hash_at + 1:].strip() if hash_at >= 0 else ""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def rows() -> list[tuple[str, str, str, str]]:
    """(name, value, purpose, source) for every alternative, in file order."""
    text = SOURCE.read_text()
    lines = text.splitlines()
    out = []
    for node in ast.parse(text).body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            continue
        name = node.targets[0].id
        purpose, i = [], node.lineno - 2
        while i >= 0 and lines[i].lstrip().startswith("#"):
            purpose.insert(0, lines[i].lstrip("# ").strip())
            i -= 1
        purpose_text = " ".join(purpose)
        values = node.value.elts if isinstance(node.value, ast.Tuple) else [node.value]
        for j, value in enumerate(values):
            if not isinstance(value, ast.Constant) or not isinstance(value.value, str):
                continue
            source = _comment(lines[value.lineno - 1], value.end_col_offset)
            out.append((name if j == 0 else "", value.value, purpose_text if j == 0 else "", source))
    return out


def table() -> str:
    head = ["| name | selector or text (in order of preference) | purpose | where it was observed |",
            "|---|---|---|---|"]
    return "\n".join(head + [f"| {'`' + n + '`' if n else ''} | `{_cell(v)}` | {_cell(p)} | {_cell(s)} |"
                             for n, v, p, s in rows()])


def doc_with_table(doc: str) -> str:
    start, end = doc.index(BEGIN) + len(BEGIN), doc.index(END)
    return doc[:start] + "\n" + table() + "\n" + doc[end:]


if __name__ == "__main__":
    if "--write" in sys.argv:
        DOC.write_text(doc_with_table(DOC.read_text()))
    else:
        print(table())
