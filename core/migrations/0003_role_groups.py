"""The five roles of DESIGN.md §3 as Django groups."""

from django.db import migrations

ROLE_NAMES = ("issuance_operator", "helpdesk_agent", "security_officer", "auditor", "station")


def create_groups(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for name in ROLE_NAMES:
        Group.objects.get_or_create(name=name)


def delete_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLE_NAMES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0002_audit_event_append_only"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]
    operations = [migrations.RunPython(create_groups, delete_groups)]
