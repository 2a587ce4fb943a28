"""The PIN mailer queue and print runs over the API: the queue shows what is left to post, paged;
a run is gathered, printed, reconciled; bad input is a 4xx; no answer but a PDF carries a code."""

from __future__ import annotations

import re

import pytest

from tests.cms.conftest import cps4  # noqa: F401 - shared fixture
from tests.cms.mailers.conftest import (  # noqa: F401 - shared fixtures
    issued_cards,
    pin_of,
    puk_of,
    queued_mailers,
    seal,
    site,
)
from tests.cms.mailers.pdf import codes, page_count
from tests.cms.personalization.conftest import card_key_dir, card_keys  # noqa: F401 - shared fixtures

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_api(api_client_for):
    return api_client_for("issuance_operator")


def test_the_queue_lists_the_letters_not_posted_past_the_first_500(
    issued_cards,  # noqa: F811
    queued_mailers,  # noqa: F811
    api_client_for,
):
    """Today's list showed the oldest 500 mailers, printed ones included: after 500 cards the
    new letters never appeared."""
    from django.utils import timezone

    from cms.mailers.references import reference_format
    from cms.models import PinMailer

    PinMailer.objects.bulk_create(
        PinMailer(
            card=card,
            reference=reference_format(50_000_000 + n),
            status="posted",
            print_count=1,
            posted_at=timezone.now(),
        )
        for n, card in enumerate(issued_cards(505))
    )
    new = queued_mailers(3)
    client = api_client_for("auditor")

    page = client.get("/api/v1/pin-mailers").json()
    assert page["count"] == 3
    assert [row["reference"] for row in page["results"]] == [m.reference for m in new]
    assert {row["status"] for row in page["results"]} == {"queued"}

    first = client.get("/api/v1/pin-mailers", {"page_size": 2}).json()
    assert len(first["results"]) == 2 and first["next"]
    rest = client.get(first["next"]).json()
    assert [r["reference"] for r in first["results"] + rest["results"]] == [
        m.reference for m in new
    ]
    posted = client.get("/api/v1/pin-mailers", {"status": "posted"}).json()
    assert posted["count"] == 505
    both = client.get("/api/v1/pin-mailers?status=posted&status=queued").json()
    assert both["count"] == 508
    assert client.get("/api/v1/pin-mailers", {"status": "lost"}).status_code == 400


def test_a_print_run_through_the_api(queued_mailers, site, operator_api, api_client_for):  # noqa: F811
    mailers = queued_mailers(3)
    numbers = [int(m.card.chip_serial[2:], 16) for m in mailers]
    secrets = {*(pin_of(n) for n in numbers), *(puk_of(n) for n in numbers)}
    answers: list[bytes] = []

    created = operator_api.post("/api/v1/print-runs/create", {"site_id": site.pk}, format="json")
    assert created.status_code == 201, created.content
    run = created.json()
    assert (run["status"], run["mailer_count"], run["site"]) == ("gathered", 3, "paris")
    answers.append(created.content)

    printed = operator_api.post(f"/api/v1/print-runs/{run['id']}/print")
    assert printed.status_code == 200
    assert printed["Content-Type"] == "application/pdf"
    assert printed["Cache-Control"] == "no-store"
    pdf = printed.content
    assert page_count(pdf) == 3
    assert codes(pdf, 0) == (pin_of(numbers[0]), puk_of(numbers[0]))

    listed = api_client_for("auditor").get("/api/v1/pin-mailers").json()
    assert {row["status"] for row in listed["results"]} == {"in_run"}
    answers.append(api_client_for("auditor").get("/api/v1/print-runs").content)
    answers.append(api_client_for("auditor").get(f"/api/v1/print-runs/{run['id']}").content)
    answers.append(str(listed).encode())

    refused = operator_api.post(
        f"/api/v1/print-runs/{run['id']}/reconcile",
        {"references": [mailers[0].reference, "PM-99999999-5"]},
        format="json",
    )
    assert refused.status_code in (400, 422), refused.content
    reconciled = operator_api.post(
        f"/api/v1/print-runs/{run['id']}/reconcile",
        {"references": [m.reference.lower() for m in mailers[:2]]},
        format="json",
    )
    assert reconciled.status_code == 200, reconciled.content
    body = reconciled.json()
    assert (body["status"], body["posted_count"], body["returned_count"]) == ("reconciled", 2, 1)
    answers.append(reconciled.content)

    again = operator_api.post(f"/api/v1/print-runs/{run['id']}/print")
    assert again.status_code == 409 and set(again.json()) == {"message", "extra"}
    # The letter left over is back in the queue, printable alone and then confirmed.
    left = mailers[2]
    assert operator_api.post(f"/api/v1/pin-mailers/{left.pk}/print").status_code == 200
    confirmed = operator_api.post(f"/api/v1/pin-mailers/{left.pk}/confirm")
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "posted"
    answers.append(confirmed.content)

    # A code as a value of its own: a 4-digit PIN also turns up by chance inside the digits of a
    # UUID or a timestamp, which is no leak (and made this test fail now and then).
    alone = [re.compile(rb"(?<![\w.:-])" + s.encode() + rb"(?![\w.:-])") for s in secrets]
    for answer in answers:
        assert not any(code.search(answer) for code in alone), answer


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("print-runs/create", {"site_id": "paris"}, 400),
        ("print-runs/create", {}, 400),
        ("print-runs/create", {"site_id": 999999}, 404),
        ("print-runs/create", {"site_id": None}, 409),  # nothing queued without a site
        ("print-runs/999999/print", None, 404),
        ("print-runs/999999/reconcile", {"references": []}, 404),
        ("print-runs/999999/reconcile", {"references": "PM-00000001-8"}, 400),
        ("print-runs/999999/reconcile", {"references": [["x"]]}, 400),
        ("pin-mailers/00000000-0000-0000-0000-000000000001/print", None, 404),
        ("pin-mailers/00000000-0000-0000-0000-000000000001/confirm", None, 404),
    ],
)
def test_bad_input_is_a_clear_4xx(operator_api, path, body, status):
    response = operator_api.post(f"/api/v1/{path}", body, format="json")
    assert response.status_code == status, response.content
    assert set(response.json()) == {"message", "extra"}


def test_a_reference_typed_wrong_is_refused_by_name(queued_mailers, site, operator_api):  # noqa: F811
    (mailer,) = queued_mailers(1)
    run = operator_api.post("/api/v1/print-runs/create", {"site_id": site.pk}, format="json")
    run_id = run.json()["id"]
    operator_api.post(f"/api/v1/print-runs/{run_id}/print")
    typo = mailer.reference[:-1] + str((int(mailer.reference[-1]) + 1) % 10)
    response = operator_api.post(
        f"/api/v1/print-runs/{run_id}/reconcile", {"references": [typo]}, format="json"
    )
    assert response.status_code == 400
    assert typo in response.json()["extra"]["references"][0]
