"""The data map (docs/data-map.md) and the export registry (gateway/privacy/datamap.py) name
every table and column of the models: a new table or column fails here until it is described
and either exported or excluded with a reason."""

from __future__ import annotations

import re
from pathlib import Path

from gateway.privacy import datamap

DOC = Path(__file__).parents[2] / "docs" / "data-map.md"
README = Path(__file__).parents[2] / "README.md"


def _sections() -> dict[str, str]:
    text = DOC.read_text(encoding="utf-8")
    parts = re.split(r"^### `([a-z_]+)`\s*$", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_every_table_and_column_is_in_the_data_map() -> None:
    sections = _sections()
    missing: list[str] = []
    for name, columns in datamap.model_tables().items():
        if name not in sections:
            missing.append(f"table {name}")
            continue
        missing += [f"{name}.{c}" for c in columns if f"`{c}`" not in sections[name]]
    assert missing == [], f"describe these in docs/data-map.md: {missing}"
    for name, body in sections.items():
        for word in ("Personal data", "Ends", "Export"):
            assert word in body, f"section {name} of the data map says nothing of {word!r}"


def test_the_data_map_names_no_table_that_does_not_exist() -> None:
    assert set(_sections()) - set(datamap.model_tables()) == set()


def test_every_table_is_exported_or_excluded_with_a_reason() -> None:
    tables = datamap.model_tables()
    assert sorted(set(tables) - set(datamap.TABLES)) == [], "add these to datamap.TABLES"
    assert sorted(set(datamap.TABLES) - set(tables)) == [], "datamap.TABLES names a lost table"
    for name, entry in datamap.TABLES.items():
        columns = tables[name]
        if entry.reach is None or entry.excluded is not None:
            assert entry.excluded and len(entry.excluded) > 20, f"{name}: say why it is left out"
        if entry.reach is None:
            # A table with an account column holds account data: it must say how to reach it.
            assert "account_id" not in columns, f"{name} has account_id but no reach"
        else:
            assert entry.reach.column in columns, f"{name}: no column {entry.reach.column}"
            if entry.reach.parent:
                assert datamap.TABLES[entry.reach.parent].reach is not None
        for column, reason in entry.hidden.items():
            assert column in columns and reason, f"{name}.{column}"


def test_every_table_with_an_account_is_exported_unless_excluded() -> None:
    exported = set(datamap.exported_tables())
    for name in datamap.account_tables():
        assert name in exported or datamap.TABLES[name].excluded, name
    assert "clients" in exported and "appointments" in exported


def test_the_readme_links_the_data_map() -> None:
    assert "docs/data-map.md" in README.read_text(encoding="utf-8")
