"""docs/whatsapp-web.md lists every selector of browser/selectors.py, as it is now."""
from __future__ import annotations

import importlib.util

from browser import selectors
from tests.helpers import ROOT


def _table_module():
    spec = importlib.util.spec_from_file_location("selector_table", ROOT / "scripts" / "selector_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_doc_table_is_the_selectors_module():
    table = _table_module()
    doc = table.DOC.read_text()
    assert table.doc_with_table(doc) == doc, "run: python scripts/selector_table.py --write"


def test_every_selector_is_in_the_table():
    listed = {value for _, value, _, _ in _table_module().rows()}
    for name in dir(selectors):
        value = getattr(selectors, name)
        if name.isupper():
            values = value if isinstance(value, tuple) else (value,)
            assert set(values) <= listed, name
