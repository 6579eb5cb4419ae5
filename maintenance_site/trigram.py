"""Trigram (pg_trgm) GIN indexes, which let `?search=` and the admin's search find a word inside a column without
reading the table: PostgreSQL only (SQLite, the embedded run, searches by scan).

Each index is on `UPPER(column::text) gin_trgm_ops`: the expression Django's `icontains` compares, so
`UPPER("title"::text) LIKE UPPER('%pump%')` is an index lookup. Created by migrations through `trigram_indexes`.
"""

from django.db import migrations


def trigram_indexes(table: str, columns: dict[str, str]) -> migrations.RunPython:
    """A migration operation: on PostgreSQL, the pg_trgm extension and one index per column of `table`,
    `columns` mapping each index's name to its column. Reversible; does nothing on other databases."""

    def forwards(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for name, column in columns.items():
            schema_editor.execute(
                f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" USING gin ((UPPER("{column}"::text)) gin_trgm_ops)'
            )

    def backwards(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for name in columns:
            schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')

    return migrations.RunPython(forwards, backwards, elidable=False)
