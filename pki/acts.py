"""The PKI's dual-control acts (``core.dual_control``): one security officer asks, a second one
approves, and the act runs in the approval's transaction.

``pki.authority_revoke``: revoke an issuing CA. The approval revokes its certificate row under
its parent; the parent's CRLs are signed right after commit by a signing worker (no CA key in the
web request that approves, ADR 0011)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction

from core.actors import Actor
from core.dual_control import ActKind, register
from core.errors import BadInput, Conflict
from core.models import DualControlAct
from core.roles import Role
from pki.choices import CaKind
from pki.domain.reasons import REVOKE_REASONS, RevocationReason
from pki.models import CertificateAuthority

AUTHORITY_REVOKE = "pki.authority_revoke"


def _validate(params: Mapping[str, Any]) -> str:
    name = str(params.get("authority", ""))
    try:
        reason = RevocationReason(str(params.get("reason", "")))
    except ValueError:
        reason = None
    if reason is None or reason not in REVOKE_REASONS:
        known = ", ".join(sorted(r.value for r in REVOKE_REASONS))
        raise BadInput(f"Give a revocation reason ({known}).")
    ca = CertificateAuthority.objects.filter(short_name=name).first()
    if ca is None:
        raise BadInput(f"No certificate authority {name!r}.")
    if ca.kind != CaKind.ISSUING:
        raise BadInput(f"{name} is a root: no CRL can list it.")
    return f"Revoke the CA {name} ({reason.value}); its parent's CRL will list it"


def _revoke(act: DualControlAct, requester: Actor, approver: Actor) -> Mapping[str, Any]:
    from pki import services, tasks

    name = str(act.params["authority"])
    cert = services.authority_revoke(
        authority=name,
        reason=RevocationReason(str(act.params["reason"])),
        actor=approver,
        officers=[requester.label, approver.label],
    )
    if cert is None:
        raise Conflict(f"{name} could not be revoked")
    transaction.on_commit(lambda: tasks.authority_parent_crls_publish_task.delay(name))
    return {"authority": name, "serial": format(int(cert.serial), "x")}


register(
    ActKind(
        name=AUTHORITY_REVOKE,
        role=Role.SECURITY_OFFICER,
        label="Revoke a certificate authority",
        handler=_revoke,
        validate=_validate,
    )
)
