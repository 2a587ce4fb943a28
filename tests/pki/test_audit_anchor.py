"""Issue 11 §7: the audit chain head is anchored outside the database, signed with an audit key
from the key backend (software and PKCS#11), published as a file and a URL; audit_verify checks
the chain against a kept anchor."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client

from core.models import AuditEvent
from tests.pki.keys_pool import rsa_key


def _anchor(tmp_path: Path, settings: Any, capture: Callable[..., Any]) -> Path:
    settings.AUDIT_ANCHOR_DIR = str(tmp_path / "publication")
    with capture(execute=True):
        out = io.StringIO()
        call_command("audit_anchor", stdout=out)
    assert "anchored head" in out.getvalue()
    return tmp_path / "publication" / "audit-anchor.json"


def _verify(*args: str, **options: Any) -> str:
    out = io.StringIO()
    call_command("audit_verify", *args, stdout=out, **options)
    return out.getvalue()


def _public_pem(document: dict[str, Any], tmp_path: Path) -> Path:
    import base64

    key = serialization.load_der_public_key(base64.b64decode(document["public_key"]))
    path = tmp_path / "audit-key.pem"
    path.write_bytes(
        key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


def test_anchor_signed_published_and_verified_with_software_key(
    pki_software: str,
    settings: Any,
    client: Client,
    tmp_path: Path,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    head_before = AuditEvent.objects.order_by("-seq").first()
    assert head_before is not None
    path = _anchor(tmp_path, settings, django_capture_on_commit_callbacks)
    document = json.loads(path.read_text())
    assert (document["seq"], document["hash"]) == (head_before.seq, head_before.hash)
    # the signing is itself audited, after the head it vouches for
    assert AuditEvent.objects.filter(action="audit.anchor_sign", seq=head_before.seq + 1).exists()
    served = client.get("/pki/audit-anchor.json")
    assert served.status_code == 200 and served.json() == document

    assert "signed anchor verified" in _verify(anchor=str(path))
    key_pem = _public_pem(document, tmp_path)
    assert "signed anchor verified" in _verify(anchor=str(path), anchor_key=str(key_pem))

    # another key pinned: refused
    other = tmp_path / "other.pem"
    other.write_bytes(
        rsa_key("holder")
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(CommandError, match="another key"):
        _verify(anchor=str(path), anchor_key=str(other))
    # an edited anchor (another head): the signature fails
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps({**document, "seq": document["seq"] - 1}))
    with pytest.raises(CommandError, match="does not verify"):
        _verify(anchor=str(forged))


def test_a_rewritten_tail_is_caught_by_the_published_anchor(
    pki_software: str,
    settings: Any,
    tmp_path: Path,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    path = _anchor(tmp_path, settings, django_capture_on_commit_callbacks)
    seq = json.loads(path.read_text())["seq"]
    with connection.cursor() as cursor:  # an attacker with table-owner rights
        cursor.execute("ALTER TABLE core_auditevent DISABLE TRIGGER USER")
        try:
            cursor.execute("DELETE FROM core_auditevent WHERE seq >= %s", [seq])
        finally:
            cursor.execute("ALTER TABLE core_auditevent ENABLE TRIGGER USER")
    assert "audit chain intact" in _verify()  # a shorter chain is valid on its own ...
    with pytest.raises(CommandError, match=f"#{seq}") as caught:
        _verify(anchor=str(path))  # ... not against the anchor kept outside
    assert caught.value.returncode == 1


def test_anchor_signed_with_a_pkcs11_key(
    pki_hsm: str,
    settings: Any,
    tmp_path: Path,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    settings.AUDIT_ANCHOR_KEY_BACKEND = "pkcs11"
    path = _anchor(tmp_path, settings, django_capture_on_commit_callbacks)
    from pki.models import AuditAnchor

    assert AuditAnchor.objects.get().key_backend == "pkcs11"
    assert "signed anchor verified" in _verify(anchor=str(path))
