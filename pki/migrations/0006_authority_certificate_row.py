"""Each issuing CA's certificate becomes a row under its parent (issue 11 §6), so the parent's
CRL can list it and CA revocation can reach it. Existing issuing CAs are backfilled."""

import hashlib
from decimal import Decimal

import django.db.models.deletion
from cryptography import x509
from django.db import migrations, models
from django.utils import timezone


def _backfill(apps, schema_editor):
    Authority = apps.get_model("pki", "CertificateAuthority")
    Certificate = apps.get_model("pki", "Certificate")
    now = timezone.now()
    for ca in Authority.objects.filter(parent__isnull=False, certificate__isnull=True):
        der = bytes(ca.certificate_der)
        parsed = x509.load_der_x509_certificate(der)
        row = Certificate.objects.create(
            issuer_id=ca.parent_id,
            serial=Decimal(parsed.serial_number),
            profile="ca_issuing",
            status="valid",
            subject=parsed.subject.rfc4514_string(),
            not_before=parsed.not_valid_before_utc,
            not_after=parsed.not_valid_after_utc,
            der=der,
            fingerprint_sha256=hashlib.sha256(der).hexdigest(),
            status_changed_at=now,
        )
        ca.certificate_id = row.pk
        ca.save(update_fields=["certificate"])


class Migration(migrations.Migration):
    dependencies = [("pki", "0005_status_signer")]

    operations = [
        migrations.AddField(
            model_name="certificateauthority",
            name="certificate",
            field=models.OneToOneField(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="authority_of",
                to="pki.certificate",
            ),
        ),
        migrations.RunPython(_backfill, migrations.RunPython.noop),
    ]
