"""PIN mailers and print runs: queue a mailer with its codes sealed, gather a site's queue into a
print run, print (and reprint) the run as one PDF, reconcile it against the letters actually
enveloped. Only a confirmed letter loses its sealed codes; every step is audited.

PIN and PUK exist in clear only in memory, while a PDF is rendered: never in the database (sealed
under a key of the card key store bound to the mailer id), logs, audit details or task messages.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from cms.callers import Caller
from cms.mailers.choices import MailerStatus, PrintRunStatus
from cms.mailers.letter import Letter, Letterhead, Window, address_lines, render
from cms.mailers.references import MailerReferenceError, reference_format, reference_parse
from cms.mailers.wording import LetterKind
from cms.models import Card, CardRequest, PinMailer, PrintRun, SitePool
from cms.personalization import keys as card_keys
from core.audit import audit_event_create
from core.errors import BadInput, Conflict, Forbidden, NotFound, PolicyViolation
from core.roles import Role
from core.sql import row_insert

PRINT_ROLES = frozenset({Role.ISSUANCE_OPERATOR})
# One letter per card for these kinds; new codes may be sent any number of times.
ONCE_PER_CARD = (LetterKind.ISSUANCE, LetterKind.RENEWAL)
REFERENCE_SEQUENCE = "cms_pinmailer_reference_seq"


class Code(Protocol):
    """A PIN or PUK as the card programs hold it: revealed only on purpose."""

    def reveal(self) -> str: ...


def _context(mailer_id: UUID) -> str:
    return f"pin-mailer:{mailer_id}"


def _require_print(caller: Caller) -> None:
    if not caller.system and not (caller.roles & PRINT_ROLES):
        raise Forbidden("Only issuance operators print and reconcile PIN mailers.")


def _next_reference() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(%s)", [REFERENCE_SEQUENCE])
        row = cursor.fetchone()
    assert row is not None  # nextval always answers
    return reference_format(int(row[0]))


# The card's letter already queued (the first by id), else the next reference number, drawn only
# then (CASE evaluates nextval only when needed): one statement where the ORM's lookup and the
# sequence took two.
_EXISTING_OR_NEXT_SQL = f"""
WITH existing AS (
    SELECT id FROM cms_pinmailer WHERE card_id = %s AND kind = ANY(%s) ORDER BY id LIMIT 1
)
SELECT (SELECT id FROM existing),
    CASE WHEN NOT EXISTS (SELECT 1 FROM existing) THEN nextval('{REFERENCE_SEQUENCE}') END
"""  # noqa: S608 - a constant name


def _existing_or_next_reference(card: Card) -> tuple[UUID | None, int | None]:
    with connection.cursor() as cursor:
        cursor.execute(_EXISTING_OR_NEXT_SQL, [card.pk, [k.value for k in ONCE_PER_CARD]])
        row = cursor.fetchone()
    assert row is not None  # one row always
    return row[0], (int(row[1]) if row[1] is not None else None)


@transaction.atomic(savepoint=False)  # inside the caller's commit (issuance, new codes)
def pin_mailer_queue(
    *,
    card: Card,
    kind: LetterKind,
    pin: Code,
    puk: Code,
    request: CardRequest | None = None,
    site: SitePool | None = None,
) -> PinMailer:
    """Queue a mailer with PIN and PUK sealed. An issuance or renewal letter is queued once per
    card: the same call again returns the mailer already queued."""
    if kind in ONCE_PER_CARD:
        existing, number = _existing_or_next_reference(card)
        if existing is not None:
            return PinMailer.objects.get(pk=existing)
        assert number is not None
        reference = reference_format(number)
    else:
        reference = _next_reference()
    mailer = PinMailer(
        card=card,
        kind=kind.value,
        request=request,
        site=site if site is not None else card.pool,
        reference=reference,
    )
    codes = json.dumps({"pin": pin.reveal(), "puk": puk.reveal()}).encode()
    mailer.sealed_secrets = card_keys.seal(codes, context=_context(mailer.pk))
    mailer.seal_key_version = card_keys.SEAL_VERSION
    # save()'s INSERT built once from the model (core.sql): the ORM's per-save machinery was
    # most of the statement's CPU on the issuance commit (issue 12).
    insert = row_insert(PinMailer)
    with connection.cursor() as cursor:
        cursor.execute(insert.sql, insert.params(mailer))
    mailer._state.adding = False
    mailer._state.db = connection.alias
    audit_event_create(
        actor=Caller.for_system("mailers").actor,
        action="pin_mailer.queue",
        object_type="pin_mailer",
        object_id=str(mailer.pk),
        details={
            "reference": mailer.reference,
            "kind": mailer.kind,
            "card_id": str(card.pk),
            "request_id": str(request.pk) if request is not None else None,
            "site": mailer.site.code if mailer.site is not None else None,
        },
    )
    return mailer


# --- rendering -----------------------------------------------------------------------------------


def letterhead() -> Letterhead:
    return Letterhead(
        name=settings.MAILER_AGENCY_NAME,
        return_address=tuple(settings.MAILER_RETURN_ADDRESS),
        helpdesk_phone=settings.MAILER_HELPDESK_PHONE,
        logo_path=settings.MAILER_AGENCY_LOGO,
        place=settings.MAILER_PLACE,
    )


def envelope_window() -> Window:
    try:
        right, top, width, height = settings.MAILER_WINDOW_MM
        window = Window.from_right(right_mm=right, top_mm=top, width_mm=width, height_mm=height)
        window.check()
    except ValueError as exc:
        raise ImproperlyConfigured(f"MAILER_WINDOW_MM (right, top, width, height): {exc}") from None
    return window


@dataclass(frozen=True, slots=True)
class _Codes:
    pin: str
    puk: str


def _unseal(mailer: PinMailer) -> _Codes:
    if mailer.sealed_secrets is None:
        raise Conflict(f"PIN mailer {mailer.reference} was posted: its codes are gone.")
    opened = json.loads(card_keys.unseal(bytes(mailer.sealed_secrets), context=_context(mailer.pk)))
    return _Codes(pin=opened["pin"], puk=opened["puk"])


def _letter(mailer: PinMailer, *, sequence: tuple[int, int] | None, run_label: str) -> Letter:
    holder = mailer.card.holder
    if holder is None:  # the registry's constraint keeps an issued card with its holder
        raise Conflict(f"PIN mailer {mailer.reference}: its card has no holder.")
    codes = _unseal(mailer)
    return Letter(
        recipient=f"{holder.first_name} {holder.last_name}".strip(),
        address=address_lines(
            line1=holder.address_line1,
            line2=holder.address_line2,
            postal_code=holder.postal_code,
            city=holder.city,
            country=holder.country,
        ),
        card_number=mailer.card.card_number or "",
        date=timezone.localdate(mailer.created_at),
        reference=mailer.reference,
        pin=codes.pin,
        puk=codes.puk,
        kind=LetterKind(mailer.kind),
        languages=tuple(settings.MAILER_LANGUAGES),
        sequence=sequence,
        run_label=run_label,
    )


def _render(mailers: list[PinMailer], *, run_label: str = "", title: str) -> bytes:
    count = len(mailers)
    letters = (
        _letter(m, sequence=(n, count) if run_label else None, run_label=run_label)
        for n, m in enumerate(mailers, start=1)
    )
    try:
        return render(letters, letterhead=letterhead(), window=envelope_window(), title=title)
    except ValueError as exc:  # a language the wording tables do not have
        raise ImproperlyConfigured(f"PIN mailer settings: {exc}") from None


# --- one mailer ----------------------------------------------------------------------------------


def _locked(mailer_id: UUID) -> PinMailer:
    mailer = (
        PinMailer.objects.select_for_update(of=("self",))
        .select_related("card__holder")
        .filter(pk=mailer_id)
        .first()
    )
    if mailer is None:
        raise NotFound(f"No PIN mailer {mailer_id}.")
    return mailer


@transaction.atomic
def pin_mailer_print(*, mailer_id: UUID, caller: Caller) -> bytes:
    """The letter of one queued mailer, e.g. a reprint for a damaged letter. Its codes stay
    sealed until ``pin_mailer_confirm``: a response lost on the way loses nothing."""
    _require_print(caller)
    mailer = _locked(mailer_id)
    if mailer.status == MailerStatus.POSTED:
        raise Conflict(f"PIN mailer {mailer.reference} was posted: its codes are gone.")
    if mailer.status == MailerStatus.VOIDED:
        raise Conflict(f"PIN mailer {mailer.reference} was voided by new codes: nothing to print.")
    if mailer.status == MailerStatus.IN_RUN:
        run = mailer.run.label if mailer.run else ""
        raise Conflict(f"PIN mailer {mailer.reference} is in print run {run}: use the run.")
    pdf = _render([mailer], title=f"PIN mailer {mailer.reference}")
    mailer.print_count += 1
    mailer.printed_at = timezone.now()
    mailer.printed_by = caller.actor.label[:150]
    mailer.save(update_fields=["print_count", "printed_at", "printed_by"])
    audit_event_create(
        actor=caller.actor,
        action="pin_mailer.print",
        object_type="pin_mailer",
        object_id=str(mailer.pk),
        details={"reference": mailer.reference, "print_count": mailer.print_count},
    )
    return pdf


@transaction.atomic
def pin_mailer_confirm(*, mailer_id: UUID, caller: Caller) -> PinMailer:
    """The operator confirms a printed letter went into its envelope: the sealed codes are
    deleted. Confirming again changes nothing."""
    _require_print(caller)
    mailer = _locked(mailer_id)
    if mailer.status == MailerStatus.POSTED:
        return mailer
    if mailer.status == MailerStatus.VOIDED:
        raise Conflict(
            f"PIN mailer {mailer.reference} was voided by new codes: destroy the letter."
        )
    if mailer.status == MailerStatus.IN_RUN:
        raise Conflict(f"PIN mailer {mailer.reference} is in a print run: reconcile the run.")
    if mailer.print_count == 0:
        raise Conflict(f"PIN mailer {mailer.reference} was never printed; print it first.")
    mailer.status = MailerStatus.POSTED
    mailer.sealed_secrets = None
    mailer.posted_at = timezone.now()
    mailer.posted_by = caller.actor.label[:150]
    mailer.save(update_fields=["status", "sealed_secrets", "posted_at", "posted_by"])
    audit_event_create(
        actor=caller.actor,
        action="pin_mailer.post",
        object_type="pin_mailer",
        object_id=str(mailer.pk),
        details={"reference": mailer.reference},
    )
    return mailer


# --- print runs ----------------------------------------------------------------------------------


@transaction.atomic
def print_run_create(*, site_id: int | None, caller: Caller) -> PrintRun:
    """Gather a site's queued mailers (oldest first, at most ``MAILER_RUN_MAX_LETTERS``) into a
    print run. Mailers locked by a concurrent gathering are left to it; nothing queued is a 409."""
    _require_print(caller)
    site = None
    if site_id is not None:
        site = SitePool.objects.filter(pk=site_id).first()
        if site is None:
            raise NotFound(f"No site {site_id}.")
    queued = (
        PinMailer.objects.select_for_update(skip_locked=True)
        # A letter printed on its own waits for its own confirmation: a run would print it twice.
        .filter(status=MailerStatus.QUEUED, site=site, print_count=0)
        .order_by("created_at", "id")
    )
    ids = list(queued.values_list("pk", flat=True)[: settings.MAILER_RUN_MAX_LETTERS])
    if not ids:
        raise Conflict(f"No PIN mailer waits for a print run at site {site or '(none)'}.")
    run = PrintRun.objects.create(
        site=site, mailer_count=len(ids), created_by=caller.actor.label[:150]
    )
    PinMailer.objects.filter(pk__in=ids).update(status=MailerStatus.IN_RUN, run=run)
    audit_event_create(
        actor=caller.actor,
        action="print_run.create",
        object_type="print_run",
        object_id=str(run.pk),
        details={"site": site.code if site else None, "mailers": len(ids)},
    )
    return run


def _locked_run(run_id: int) -> PrintRun:
    run = PrintRun.objects.select_for_update().filter(pk=run_id).first()
    if run is None:
        raise NotFound(f"No print run {run_id}.")
    return run


def _run_mailers(run: PrintRun) -> list[PinMailer]:
    return list(
        PinMailer.objects.select_for_update(of=("self",))
        .select_related("card__holder")
        .filter(run=run, status=MailerStatus.IN_RUN)
        .order_by("created_at", "id")
    )


@transaction.atomic
def print_run_print(*, run_id: int, caller: Caller) -> bytes:
    """The run's PDF for the print shop, one page per letter with its Code 128. A run prints
    again (a jam, a lost file) until it is reconciled."""
    _require_print(caller)
    run = _locked_run(run_id)
    if run.status == PrintRunStatus.RECONCILED:
        raise Conflict(f"Print run {run.label} is reconciled; its letters are posted or queued.")
    mailers = _run_mailers(run)
    pdf = _render(mailers, run_label=run.label, title=f"PIN mailers, print run {run.label}")
    now = timezone.now()
    reprint = run.print_count > 0
    run.status = PrintRunStatus.PRINTED
    run.print_count += 1
    run.printed_at = now
    run.save(update_fields=["status", "print_count", "printed_at"])
    PinMailer.objects.filter(pk__in=[m.pk for m in mailers]).update(
        printed_at=now, printed_by=caller.actor.label[:150], print_count=F("print_count") + 1
    )
    audit_event_create(
        actor=caller.actor,
        action="print_run.reprint" if reprint else "print_run.print",
        object_type="print_run",
        object_id=str(run.pk),
        details={"mailers": len(mailers), "print_count": run.print_count},
    )
    return pdf


def references_parse(texts: Iterable[str]) -> set[str]:
    """Scanned or typed references, canonical; ``BadInput`` names every one that is not."""
    found: set[str] = set()
    wrong: list[str] = []
    for text in texts:
        try:
            found.add(reference_parse(text))
        except MailerReferenceError as exc:
            wrong.append(str(exc))
    if wrong:
        raise BadInput("Some references are not mailer references.", extra={"references": wrong})
    return found


@transaction.atomic
def print_run_reconcile(*, run_id: int, references: Iterable[str], caller: Caller) -> PrintRun:
    """Close a printed run with the references of the letters actually enveloped: those are
    posted and their sealed codes deleted; the run's other letters go back to the queue. A
    reference outside the run refuses the whole reconciliation (422), so a slip loses nothing.
    The same reconciliation again changes nothing."""
    _require_print(caller)
    confirmed = references_parse(references)
    run = _locked_run(run_id)
    if run.status == PrintRunStatus.RECONCILED:
        posted = set(run.mailers.values_list("reference", flat=True))
        if posted == confirmed:
            return run
        raise Conflict(f"Print run {run.label} is already reconciled.")
    if run.status != PrintRunStatus.PRINTED:
        raise Conflict(f"Print run {run.label} was never printed; print it first.")
    mailers = {m.reference: m for m in _run_mailers(run)}
    strangers = sorted(confirmed - mailers.keys())
    if strangers:
        raise PolicyViolation(
            f"{len(strangers)} reference(s) are not letters of print run {run.label}; "
            "nothing was reconciled.",
            extra={"references": strangers},
        )
    now = timezone.now()
    posted_ids = [mailers[ref].pk for ref in confirmed]
    returned = sorted(mailers.keys() - confirmed)
    PinMailer.objects.filter(pk__in=posted_ids).update(
        status=MailerStatus.POSTED,
        sealed_secrets=None,
        posted_at=now,
        posted_by=caller.actor.label[:150],
    )
    PinMailer.objects.filter(run=run, reference__in=returned).update(
        status=MailerStatus.QUEUED, run=None
    )
    run.status = PrintRunStatus.RECONCILED
    run.reconciled_at = now
    run.reconciled_by = caller.actor.label[:150]
    run.posted_count = len(posted_ids)
    run.returned_count = len(returned)
    run.save(
        update_fields=[
            "status",
            "reconciled_at",
            "reconciled_by",
            "posted_count",
            "returned_count",
        ]
    )
    audit_event_create(
        actor=caller.actor,
        action="print_run.reconcile",
        object_type="print_run",
        object_id=str(run.pk),
        details={
            "posted": sorted(confirmed),
            "returned_to_queue": returned,
        },
    )
    return run
