"""The database itself refuses UPDATE and DELETE on audit events.

TRUNCATE is a table privilege: production revokes it from the application role (docs/operations.md)
rather than a trigger, so that the test suite can still empty tables between transactional tests.
"""

from django.db import migrations

PG_FORWARD = """
CREATE OR REPLACE FUNCTION core_auditevent_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'core_auditevent is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER core_auditevent_no_update_delete
    BEFORE UPDATE OR DELETE ON core_auditevent
    FOR EACH ROW EXECUTE FUNCTION core_auditevent_refuse_change();
"""
PG_BACKWARD = """
DROP TRIGGER IF EXISTS core_auditevent_no_update_delete ON core_auditevent;
DROP FUNCTION IF EXISTS core_auditevent_refuse_change();
"""


def forward(apps, schema_editor):
    schema_editor.execute(PG_FORWARD, params=None)


def backward(apps, schema_editor):
    schema_editor.execute(PG_BACKWARD)


class Migration(migrations.Migration):
    dependencies = [("core", "0001_audit_event")]
    operations = [migrations.RunPython(forward, backward, elidable=False)]
