"""The PIN mailer queue and its print runs on PostgreSQL: gather, print, reprint, reconcile; the
codes stay sealed until a letter is confirmed enveloped; every step audited."""

from __future__ import annotations

import json

import pytest

from tests.cms.mailers.conftest import Code, pin_of, puk_of
from tests.cms.mailers.pdf import barcodes, codes, page_count, rasterize, texts

pytestmark = pytest.mark.django_db

# The Code 128 strip of the top panel, from the sheet's top-left corner: x, y, width, height (mm).
CODE_STRIP_MM = (12.0, 78.0, 80.0, 16.0)


def _audit(action: str):
    from core.models import AuditEvent

    return AuditEvent.objects.filter(action=action)


def test_a_run_of_500_is_one_pdf_whose_codes_decode_to_the_references(
    queued_mailers, operator, site, tmp_path
):
    from cms.mailers.services import print_run_create, print_run_print, print_run_reconcile
    from cms.models import PinMailer

    mailers = queued_mailers(500)
    references = [m.reference for m in mailers]
    run = print_run_create(site_id=site.pk, caller=operator)
    assert run.mailer_count == 500

    pdf = print_run_print(run_id=run.pk, caller=operator)
    assert page_count(pdf) == 500
    images = rasterize(pdf, tmp_path, dpi=200, crop_mm=CODE_STRIP_MM)
    decoded = [barcodes(image) for image in images]
    assert decoded == [[reference] for reference in references]  # one code a page, in order
    # The codes on page n are mailer n's, and no barcode carries one.
    n = int(mailers[0].card.chip_serial[2:], 16)
    assert codes(pdf, 0) == (pin_of(n), puk_of(n))
    assert not {pin_of(n), puk_of(n)} & {text for page in decoded for text in page}

    run = print_run_reconcile(run_id=run.pk, references=references[:499], caller=operator)
    assert (run.status, run.posted_count, run.returned_count) == ("reconciled", 499, 1)
    queued = PinMailer.objects.filter(status="queued")
    assert [m.reference for m in queued] == [references[499]]
    assert queued.get().sealed_secrets is not None and queued.get().run is None
    assert PinMailer.objects.filter(status="posted", sealed_secrets__isnull=True).count() == 499


def test_printing_keeps_the_codes_until_the_letter_is_confirmed(queued_mailers, operator):
    """Today's print deleted the only copy with the response: a dropped response lost the PIN."""
    from cms.mailers.services import pin_mailer_confirm, pin_mailer_print
    from core.errors import Conflict

    (mailer,) = queued_mailers(1)
    first = pin_mailer_print(mailer_id=mailer.pk, caller=operator)
    # ... the response is lost on the way: the operator asks again and gets the same codes.
    again = pin_mailer_print(mailer_id=mailer.pk, caller=operator)
    assert codes(first) == codes(again)
    mailer.refresh_from_db()
    assert mailer.status == "queued" and mailer.sealed_secrets is not None
    assert mailer.print_count == 2

    posted = pin_mailer_confirm(mailer_id=mailer.pk, caller=operator)
    assert posted.status == "posted" and posted.sealed_secrets is None
    assert pin_mailer_confirm(mailer_id=mailer.pk, caller=operator).posted_at == posted.posted_at
    with pytest.raises(Conflict):
        pin_mailer_print(mailer_id=mailer.pk, caller=operator)
    assert _audit("pin_mailer.print").count() == 2
    assert _audit("pin_mailer.post").count() == 1  # confirming twice audits once


def test_a_letter_never_printed_cannot_be_confirmed(queued_mailers, operator):
    from cms.mailers.services import pin_mailer_confirm
    from core.errors import Conflict

    (mailer,) = queued_mailers(1)
    with pytest.raises(Conflict):
        pin_mailer_confirm(mailer_id=mailer.pk, caller=operator)


def test_a_run_prints_again_until_reconciled(queued_mailers, operator, site):
    from cms.mailers.services import print_run_create, print_run_print, print_run_reconcile
    from core.errors import Conflict

    mailers = queued_mailers(3)
    run = print_run_create(site_id=site.pk, caller=operator)
    first = print_run_print(run_id=run.pk, caller=operator)
    second = print_run_print(run_id=run.pk, caller=operator)
    assert [codes(first, p) for p in range(3)] == [codes(second, p) for p in range(3)]
    assert _audit("print_run.print").count() == 1 and _audit("print_run.reprint").count() == 1

    references = [m.reference for m in mailers]
    print_run_reconcile(run_id=run.pk, references=references, caller=operator)
    # The same reconciliation again (a double click) changes nothing.
    again = print_run_reconcile(run_id=run.pk, references=references[::-1], caller=operator)
    assert again.posted_count == 3
    assert _audit("print_run.reconcile").count() == 1
    with pytest.raises(Conflict):
        print_run_print(run_id=run.pk, caller=operator)
    with pytest.raises(Conflict):
        print_run_reconcile(run_id=run.pk, references=references[:1], caller=operator)


def test_a_reference_outside_the_run_refuses_the_whole_reconciliation(
    queued_mailers, operator, site
):
    from cms.mailers.references import reference_format
    from cms.mailers.services import print_run_create, print_run_print, print_run_reconcile
    from cms.models import PinMailer
    from core.errors import BadInput, PolicyViolation

    mailers = queued_mailers(2)
    run = print_run_create(site_id=site.pk, caller=operator)
    print_run_print(run_id=run.pk, caller=operator)
    stranger = reference_format(99_999_999)
    with pytest.raises(PolicyViolation) as refused:
        print_run_reconcile(
            run_id=run.pk, references=[mailers[0].reference, stranger], caller=operator
        )
    assert refused.value.extra == {"references": [stranger]}
    typo = mailers[0].reference[:-1] + str((int(mailers[0].reference[-1]) + 1) % 10)
    with pytest.raises(BadInput):
        print_run_reconcile(run_id=run.pk, references=[typo], caller=operator)
    assert set(PinMailer.objects.values_list("status", flat=True)) == {"in_run"}
    assert not _audit("print_run.reconcile").exists()


def test_a_run_not_printed_cannot_be_reconciled(queued_mailers, operator, site):
    from cms.mailers.services import print_run_create, print_run_reconcile
    from core.errors import Conflict

    mailers = queued_mailers(1)
    run = print_run_create(site_id=site.pk, caller=operator)
    with pytest.raises(Conflict):
        print_run_reconcile(run_id=run.pk, references=[mailers[0].reference], caller=operator)


def test_gathering_takes_the_site_queue_once(queued_mailers, issued_cards, operator, site):
    from cms.mailers.services import pin_mailer_print, print_run_create
    from cms.models import SitePool
    from core.errors import Conflict, NotFound

    elsewhere = SitePool.objects.create(code="lyon", name="Lyon")
    here = queued_mailers(3)
    queued_mailers(2, pool=elsewhere)
    run = print_run_create(site_id=site.pk, caller=operator)
    assert set(run.mailers.values_list("reference", flat=True)) == {m.reference for m in here}
    with pytest.raises(Conflict):
        print_run_create(site_id=site.pk, caller=operator)  # nothing left at this site
    with pytest.raises(Conflict):
        pin_mailer_print(mailer_id=here[0].pk, caller=operator)  # it is the run's to print
    with pytest.raises(NotFound):
        print_run_create(site_id=999_999, caller=operator)
    assert print_run_create(site_id=elsewhere.pk, caller=operator).mailer_count == 2


def test_a_run_takes_at_most_the_configured_number_of_letters(
    queued_mailers, operator, site, settings
):
    from cms.mailers.services import print_run_create

    settings.MAILER_RUN_MAX_LETTERS = 2
    mailers = queued_mailers(3)
    first = print_run_create(site_id=site.pk, caller=operator)
    assert list(first.mailers.order_by("created_at").values_list("reference", flat=True)) == [
        m.reference for m in mailers[:2]
    ]
    assert print_run_create(site_id=site.pk, caller=operator).mailer_count == 1


def test_the_daily_task_gathers_each_site_with_queued_letters(queued_mailers, site, settings):
    from cms.mailers.tasks import print_runs_gather_task
    from cms.models import PrintRun, SitePool

    elsewhere = SitePool.objects.create(code="lyon", name="Lyon")
    queued_mailers(2)
    queued_mailers(1, pool=elsewhere)
    assert print_runs_gather_task.delay().get() == 2
    assert sorted(PrintRun.objects.values_list("site__code", "mailer_count")) == [
        ("lyon", 1),
        ("paris", 2),
    ]
    assert print_runs_gather_task.delay().get() == 0  # run twice: nothing left to gather
    entry = settings.CELERY_BEAT_SCHEDULE["mailers-print-runs"]
    assert entry["task"] == print_runs_gather_task.name


def test_only_issuance_operators_print_and_reconcile(queued_mailers, caller_for, site):
    from cms.mailers.services import pin_mailer_print, print_run_create
    from core.errors import Forbidden

    (mailer,) = queued_mailers(1)
    for role in ("helpdesk_agent", "auditor", "security_officer"):
        with pytest.raises(Forbidden):
            pin_mailer_print(mailer_id=mailer.pk, caller=caller_for(role))
        with pytest.raises(Forbidden):
            print_run_create(site_id=site.pk, caller=caller_for(role))


def test_the_codes_are_nowhere_in_clear(queued_mailers, operator, site, caplog):
    from django.db import connection

    from cms.mailers.services import print_run_create, print_run_print, print_run_reconcile
    from core.models import AuditEvent

    mailers = queued_mailers(2)
    run = print_run_create(site_id=site.pk, caller=operator)
    print_run_print(run_id=run.pk, caller=operator)
    numbers = [int(m.card.chip_serial[2:], 16) for m in mailers]
    secrets = [*(pin_of(n) for n in numbers), *(puk_of(n) for n in numbers)]
    with connection.cursor() as cursor:
        cursor.execute("SELECT sealed_secrets FROM cms_pinmailer")
        sealed = [bytes(row[0]) for row in cursor.fetchall()]
    assert all(b"pin" not in blob and b"puk" not in blob for blob in sealed)
    audit = json.dumps([e.details for e in AuditEvent.objects.all()])
    logs = caplog.text
    for secret in secrets:
        assert not any(secret.encode() in blob for blob in sealed)
        assert secret not in audit and secret not in logs
    print_run_reconcile(run_id=run.pk, references=[mailers[0].reference], caller=operator)


def _reference_drawn() -> int:
    from django.db import connection

    from cms.mailers.services import REFERENCE_SEQUENCE

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT last_value FROM {REFERENCE_SEQUENCE}")
        row = cursor.fetchone()
    assert row is not None
    return int(row[0])


def test_issuance_and_renewal_letters_are_queued_once_per_card(issued_cards, card_keys, cps4):
    from django.db import transaction

    from cms.choices import RequestKind
    from cms.models import CardRequest, PinMailer
    from cms.personalization.mailer import pin_mailer_create

    card, renewed = issued_cards(2)
    with transaction.atomic():
        request = CardRequest.objects.create(
            kind=RequestKind.NEW, holder=card.holder, product=cps4, card=card, pool=card.pool
        )
        renewal = CardRequest.objects.create(
            kind=RequestKind.RENEWAL, holder=renewed.holder, product=cps4, card=renewed
        )
        first = pin_mailer_create(request=request, pin=Code("1234"), puk=Code("12345678"))
        drawn = _reference_drawn()
        again = pin_mailer_create(request=request, pin=Code("9999"), puk=Code("99999999"))
        assert _reference_drawn() == drawn  # the letter already queued draws no reference
        renewal_letter = pin_mailer_create(request=renewal, pin=Code("4321"), puk=Code("87654321"))
    assert first.pk == again.pk and PinMailer.objects.filter(card=card).count() == 1
    assert (first.kind, first.site_id) == ("issuance", card.pool_id)
    assert renewal_letter.kind == "renewal"
    assert _audit("pin_mailer.queue").count() == 2


def test_new_codes_letters_may_follow_the_issuance_letter(queued_mailers, operator):
    from django.db import transaction

    from cms.mailers.services import pin_mailer_print, pin_mailer_queue
    from cms.mailers.wording import LetterKind

    (issuance,) = queued_mailers(1)
    with transaction.atomic():
        new_codes = pin_mailer_queue(
            card=issuance.card, kind=LetterKind.NEW_CODES, pin=Code("2468"), puk=Code("13579135")
        )
    assert new_codes.pk != issuance.pk and new_codes.reference != issuance.reference
    pdf = pin_mailer_print(mailer_id=new_codes.pk, caller=operator)
    assert codes(pdf) == ("2468", "13579135")
    assert any("de nouveaux codes confidentiels" in t.text for t in texts(pdf))


def test_the_letter_carries_the_holder_address_and_the_card_number(queued_mailers, operator):
    from cms.mailers.services import pin_mailer_print
    from cms.models import Holder

    (mailer,) = queued_mailers(1)
    holder = mailer.card.holder
    Holder.objects.filter(pk=holder.pk).update(
        address_line2="Bâtiment B", country="BE", postal_code="1000", city="Bruxelles"
    )
    found = {t.text for t in texts(pin_mailer_print(mailer_id=mailer.pk, caller=operator))}
    assert {
        f"Claire {holder.last_name}",
        holder.address_line1,
        "Bâtiment B",
        "1000 BRUXELLES",
        "BELGIQUE",
        mailer.card.card_number,
        mailer.reference,
    } <= found


def test_a_letter_printed_on_its_own_stays_out_of_runs(queued_mailers, operator, site):
    """It waits for its own confirmation: a run would print its codes a second time."""
    from cms.mailers.services import pin_mailer_confirm, pin_mailer_print, print_run_create

    alone, _other = queued_mailers(2)
    pin_mailer_print(mailer_id=alone.pk, caller=operator)
    run = print_run_create(site_id=site.pk, caller=operator)
    assert run.mailer_count == 1
    alone.refresh_from_db()
    assert alone.run_id is None and alone.status == "queued"
    assert pin_mailer_confirm(mailer_id=alone.pk, caller=operator).status == "posted"


def test_a_letter_sent_back_by_its_run_counts_its_print_and_can_be_confirmed(
    queued_mailers, operator, site
):
    from cms.mailers.services import (
        pin_mailer_confirm,
        print_run_create,
        print_run_print,
        print_run_reconcile,
    )

    kept, returned = queued_mailers(2)
    run = print_run_create(site_id=site.pk, caller=operator)
    print_run_print(run_id=run.pk, caller=operator)
    print_run_reconcile(run_id=run.pk, references=[kept.reference], caller=operator)
    returned.refresh_from_db()
    assert returned.status == "queued" and returned.print_count == 1
    assert pin_mailer_confirm(mailer_id=returned.pk, caller=operator).status == "posted"
