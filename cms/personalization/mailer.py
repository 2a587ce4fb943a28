"""The PIN mailer: rendered once (PDF, reportlab) at issuance into a protected print queue.

The PDF is sealed at rest (AES-GCM under a key of the card key store bound to the mailer id)
and deleted once printed: PIN and PUK exist in clear only in memory, while rendering and printing.
"""

from __future__ import annotations

import io
from typing import Any
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from cards.programs.cps4 import Secret
from cms.callers import Caller
from cms.models import CardRequest, PinMailer
from cms.personalization import keys as card_keys
from core.audit import audit_event_create
from core.errors import Conflict, Forbidden, NotFound
from core.roles import Role

PRINT_ROLES = frozenset({Role.ISSUANCE_OPERATOR})


def _context(mailer_id: UUID) -> str:
    return f"pin-mailer:{mailer_id}"


def pin_mailer_list(limit: int = 500) -> list[dict[str, Any]]:
    """The print queue, oldest first: metadata only, never the PDF."""
    rows = PinMailer.objects.order_by("created_at").values(
        "id", "card_id", "request_id", "created_at", "printed_at", "printed_by"
    )[:limit]
    return [dict(row) for row in rows]


def pin_mailer_render(*, request: CardRequest, pin: Secret, puk: Secret) -> bytes:
    """The mailer PDF: holder's name and address on the front, PIN and PUK inside."""
    # reportlab loads when a mailer is rendered (once per issued card), not with every process.
    from reportlab.lib.pagesizes import A4  # type: ignore[import-untyped]
    from reportlab.lib.units import mm  # type: ignore[import-untyped]
    from reportlab.pdfgen import canvas  # type: ignore[import-untyped]

    holder = request.holder
    card = request.card
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4, invariant=True, pageCompression=0)
    pdf.setTitle("CPS PIN mailer")
    pdf.setFont("Helvetica", 11)
    y = 270 * mm
    for line in (
        f"{holder.first_name} {holder.last_name}",
        f"{holder.postal_code} {holder.city}".strip(),
        "",
        f"Card / Carte : {card.card_number if card else ''}",
    ):
        pdf.drawString(25 * mm, y, line)
        y -= 7 * mm
    pdf.setFont("Helvetica-Bold", 14)
    pdf.drawString(25 * mm, 200 * mm, f"PIN : {pin.reveal()}")
    pdf.drawString(25 * mm, 190 * mm, f"PUK : {puk.reveal()}")
    pdf.setFont("Helvetica", 9)
    pdf.drawString(25 * mm, 180 * mm, "Keep this letter apart from the card. / Conservez ce pli.")
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


@transaction.atomic(savepoint=False)  # inside the issuance commit: no savepoint round trips
def pin_mailer_create(*, request: CardRequest, pin: Secret, puk: Secret) -> PinMailer:
    """Render the mailer once and queue it sealed; a card has one mailer."""
    assert request.card_id is not None
    existing = PinMailer.objects.filter(card_id=request.card_id).first()
    if existing is not None:
        return existing
    mailer = PinMailer(card_id=request.card_id, request=request)
    pdf = pin_mailer_render(request=request, pin=pin, puk=puk)
    mailer.sealed_pdf = card_keys.seal(pdf, context=_context(mailer.pk))
    mailer.save()
    audit_event_create(
        actor=Caller.for_system("personalization").actor,
        action="pin_mailer.queue",
        object_type="pin_mailer",
        object_id=str(mailer.pk),
        details={"card_id": str(request.card_id), "request_id": str(request.pk)},
    )
    return mailer


@transaction.atomic
def pin_mailer_print(*, mailer_id: UUID, caller: Caller) -> bytes:
    """Hand the PDF to the printer once; the sealed copy is deleted in the same transaction."""
    if not (caller.roles & PRINT_ROLES):
        raise Forbidden("Only issuance operators print PIN mailers.")
    mailer = PinMailer.objects.select_for_update().filter(pk=mailer_id).first()
    if mailer is None:
        raise NotFound(f"No PIN mailer {mailer_id}.")
    if mailer.sealed_pdf is None:
        raise Conflict("This PIN mailer was printed already; it is printed only once.")
    pdf = card_keys.unseal(bytes(mailer.sealed_pdf), context=_context(mailer.pk))
    mailer.sealed_pdf = None
    mailer.printed_at = timezone.now()
    mailer.printed_by = caller.actor.label[:150]
    mailer.save(update_fields=["sealed_pdf", "printed_at", "printed_by"])
    audit_event_create(
        actor=caller.actor,
        action="pin_mailer.print",
        object_type="pin_mailer",
        object_id=str(mailer.pk),
        details={"card_id": str(mailer.card_id)},
    )
    return pdf
