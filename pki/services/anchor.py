"""Anchoring the audit chain outside the database (issue 11 §7): the head (seq, hash) signed with
the audit key from a key backend (software or PKCS#11), stored, written to
``<AUDIT_ANCHOR_DIR>/audit-anchor.json`` and served at ``/pki/audit-anchor.json``. The beat task
``pki.tasks.audit_anchor_task`` does it every ``AUDIT_ANCHOR_INTERVAL_SECONDS``; verification is
``manage.py audit_verify --anchor`` (``core.anchor``)."""

from __future__ import annotations

import base64
import json
import os
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.actors import Actor
from core.anchor import ALGORITHM, anchor_payload
from core.audit import audit_event_create
from core.errors import Conflict
from core.models import AuditEvent
from pki.key_backends import key_backend_get
from pki.models import AuditAnchor
from pki.services.errors import translated

ANCHOR_FILE = "audit-anchor.json"


def _backend_alias() -> str:
    return str(
        getattr(settings, "AUDIT_ANCHOR_KEY_BACKEND", "") or settings.PKI_DEFAULT_KEY_BACKEND
    )


def anchor_dir() -> Path:
    return Path(getattr(settings, "AUDIT_ANCHOR_DIR", "") or settings.VAR_DIR / "publication")


def audit_anchor_sign(*, actor: Actor) -> AuditAnchor:
    """Sign the current head of the audit chain and publish it (the file after commit)."""
    alias = _backend_alias()
    label = str(getattr(settings, "AUDIT_ANCHOR_KEY_LABEL", "audit-anchor"))
    with translated():
        backend = key_backend_get(alias)
        handle = backend.handle_for(label)
        if not backend.has_key(handle):
            handle = backend.generate_rsa(label=label, key_size=3072)
        key = backend.private_key(handle)
        public_der = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    with transaction.atomic():
        head = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()
        if head is None:
            raise Conflict("The audit chain is empty: nothing to anchor yet.")
        seq, head_hash = head
        signed_at = timezone.now().strftime("%Y-%m-%dT%H:%M:%SZ")
        with translated():
            signature = key.sign(
                anchor_payload(seq=seq, head_hash=head_hash, signed_at=signed_at),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        document = {
            "seq": seq,
            "hash": head_hash,
            "signed_at": signed_at,
            "algorithm": ALGORITHM,
            "public_key": base64.b64encode(public_der).decode(),
            "signature": base64.b64encode(signature).decode(),
        }
        anchor = AuditAnchor.objects.create(
            seq=seq,
            head_hash=head_hash,
            signed_at=signed_at,
            key_backend=alias,
            key_handle=handle,
            document=document,
        )
        audit_event_create(
            actor=actor,
            action="audit.anchor_sign",
            object_type="audit.anchor",
            object_id=str(anchor.pk),
            details={"seq": seq, "hash": head_hash, "backend": alias},
        )
        transaction.on_commit(lambda: anchor_file_write(document))
    return anchor


def anchor_file_write(document: dict[str, object]) -> Path:
    """Replace the published anchor file atomically."""
    folder = anchor_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / ANCHOR_FILE
    fd, temp = tempfile.mkstemp(dir=folder, prefix=".anchor-")
    with os.fdopen(fd, "w") as out:
        json.dump(document, out, sort_keys=True, indent=1)
    os.chmod(temp, 0o644)
    os.replace(temp, target)
    return target
