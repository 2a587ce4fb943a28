"""One round trip to take the chain lock and read the head (PostgreSQL).

A VOLATILE PL/pgSQL function takes a fresh snapshot for each statement, so the SELECT after the
lock sees the event committed by the transaction that held the lock before us.
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION core_auditevent_lock_head(lock_key bigint)
RETURNS TABLE (head_seq bigint, head_hash varchar) AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(lock_key);
    RETURN QUERY SELECT seq, hash FROM core_auditevent ORDER BY seq DESC LIMIT 1;
END;
$$ LANGUAGE plpgsql VOLATILE;
"""
BACKWARD = "DROP FUNCTION IF EXISTS core_auditevent_lock_head(bigint);"


def forward(apps, schema_editor):
    schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("core", "0004_api_token")]
    operations = [migrations.RunPython(forward, backward, elidable=False)]
