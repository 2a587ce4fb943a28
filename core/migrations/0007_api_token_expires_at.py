import datetime as dt

from django.db import migrations, models


def _expire_existing(apps, schema_editor):
    """Tokens made before expiry existed get the default lifetimes from their creation."""
    ApiToken = apps.get_model("core", "ApiToken")
    for token in ApiToken.objects.filter(expires_at__isnull=True).select_related("user"):
        station = token.user.groups.filter(name="station").exists()
        token.expires_at = token.created_at + dt.timedelta(days=365 if station else 30)
        token.save(update_fields=["expires_at"])


class Migration(migrations.Migration):
    dependencies = [("core", "0006_dual_control_act")]

    operations = [
        migrations.AddField(
            model_name="apitoken",
            name="expires_at",
            field=models.DateTimeField(
                blank=True,
                help_text="refused from then on (API_TOKEN_*LIFETIME_DAYS)",
                null=True,
            ),
        ),
        migrations.RunPython(_expire_existing, migrations.RunPython.noop),
    ]
