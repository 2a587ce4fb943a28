"""Name search: pg_trgm GIN indexes on UPPER(name), which Django's icontains/istartswith compare."""

from django.db import migrations

INDEXES = (
    ("cms_holder_last_name_trgm", "cms_holder", "last_name"),
    ("cms_holder_first_name_trgm", "cms_holder", "first_name"),
)


def forwards(apps, schema_editor):
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, table, column in INDEXES:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON {table} USING gin (UPPER({column}) gin_trgm_ops)"
        )


def backwards(apps, schema_editor):
    for name, _table, _column in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("cms", "0001_registry")]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
