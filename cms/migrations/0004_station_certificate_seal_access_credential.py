"""Station: a link to the certificate in force (so it can be revoked). Session: the contactless
access credential moves from a clear column into the sealed secrets (with PIN and PUK)."""

import json

import django.db.models.deletion
from django.db import migrations, models

STATION_PROFILE = "station_client"


def link_station_certificates(apps, schema_editor):
    Station = apps.get_model("cms", "Station")
    Certificate = apps.get_model("pki", "Certificate")
    for station in Station.objects.exclude(certificate_serial=""):
        certificate = (
            Certificate.objects.filter(
                profile=STATION_PROFILE, serial=int(station.certificate_serial, 16)
            )
            .order_by("-created_at")
            .first()
        )
        if certificate is not None:
            station.certificate = certificate
            station.save(update_fields=["certificate"])


def seal_access_credentials(apps, schema_editor):
    """Resumable sessions get the credential inside their sealed secrets; the others (ended, no
    sealed secrets) no longer need it. Only touches the card key store when such rows exist."""
    Session = apps.get_model("cms", "PersonalizationSession")
    pending = Session.objects.filter(sealed_secrets__isnull=False).exclude(access_credential="")
    if not pending.exists():
        return
    from cms.personalization import keys

    for session in pending:
        context = f"session-secrets:{session.job_id}"
        values = json.loads(keys.unseal(bytes(session.sealed_secrets), context=context))
        values["access"] = session.access_credential
        session.sealed_secrets = keys.seal(json.dumps(values).encode(), context=context)
        session.save(update_fields=["sealed_secrets"])


class Migration(migrations.Migration):
    dependencies = [
        ("cms", "0003_personalization"),
        ("pki", "0003_certificate_add_crl_entry"),
    ]

    operations = [
        migrations.AddField(
            model_name="station",
            name="certificate",
            field=models.ForeignKey(
                blank=True,
                help_text=(
                    "the station_client certificate in force (revoked when replaced or disabled)"
                ),
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="pki.certificate",
            ),
        ),
        migrations.RunPython(link_station_certificates, migrations.RunPython.noop),
        migrations.RunPython(seal_access_credentials, migrations.RunPython.noop),
        migrations.RemoveField(model_name="personalizationsession", name="access_credential"),
    ]
