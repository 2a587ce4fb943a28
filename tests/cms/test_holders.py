"""Holders: validation, duplicates, no-op updates, and the directory import."""

from __future__ import annotations

import dataclasses

import pytest

from cms.models import Holder
from cms.services.holder_import import holder_import
from cms.services.holders import HolderData, holder_create, holder_update
from core.errors import BadInput, Conflict, Forbidden
from core.models import AuditEvent

pytestmark = pytest.mark.django_db

CLAIRE = HolderData(
    national_id="810002813839",
    last_name="Martin",
    first_name="Claire",
    profession="10",
    postal_code="20090",
)


def test_create_normalises_and_derives_the_departement(caller_for):
    holder = holder_create(data=CLAIRE, caller=caller_for("issuance_operator"))
    assert (holder.last_name, holder.departement) == ("MARTIN", "2A")
    event = AuditEvent.objects.get(action="holder.create")
    assert event.details == {"national_id": "810002813839", "profession": "10", "card_type": "CPS"}


def test_create_twice_is_a_noop_and_a_different_holder_is_a_duplicate(caller_for):
    op = caller_for("issuance_operator")
    first = holder_create(data=CLAIRE, caller=op)
    assert holder_create(data=CLAIRE, caller=op).pk == first.pk
    assert AuditEvent.objects.filter(action="holder.create").count() == 1
    with pytest.raises(Conflict) as info:
        holder_create(data=dataclasses.replace(CLAIRE, first_name="Paul"), caller=op)
    assert info.value.extra["holder_id"] == str(first.pk)


def test_invalid_holders_name_every_wrong_field_and_store_nothing(caller_for):
    bad = HolderData(national_id="810002813838", last_name="", first_name="X", profession="11",
                     postal_code="7501")  # fmt: skip
    with pytest.raises(BadInput) as info:
        holder_create(data=bad, caller=caller_for("issuance_operator"))
    assert set(info.value.extra["fields"]) == {"national_id", "last_name", "profession",
                                               "postal_code"}  # fmt: skip
    assert not Holder.objects.exists()


def test_only_operators_write_holders(caller_for):
    with pytest.raises(Forbidden):
        holder_create(data=CLAIRE, caller=caller_for("helpdesk_agent"))


def test_update_changes_only_what_differs_and_a_repeat_is_a_noop(caller_for):
    op = caller_for("issuance_operator")
    holder = holder_create(data=CLAIRE, caller=op)
    holder_update(holder_id=holder.pk, changes={"status": "left_profession"}, caller=op)
    count = AuditEvent.objects.count()
    holder_update(holder_id=holder.pk, changes={"status": "left_profession"}, caller=op)
    assert AuditEvent.objects.count() == count
    assert AuditEvent.objects.get(action="holder.update").details["fields"] == ["status"]
    with pytest.raises(BadInput):
        holder_update(holder_id=holder.pk, changes={"national_id": "810002813839"}, caller=op)


EXTRACT = (
    "Identification nationale PP|Nom d'exercice|Prénom d'exercice|Code profession|"
    "Code postal (coord. structure)|Libellé commune (coord. structure)\n"
    "810002813839|Martin|Claire|10|75011|Paris\n"
    "810002813838|Bad|Check|10|75011|Paris\n"
    "0751234567|Durand|Paul|60|69003|Lyon\n"
    "810002813839|Martin|Claire bis|10|75011|Paris\n"
    "810000000009|Petit|Anne|99|13001|Marseille\n"
    "\n"
)


def test_import_upserts_valid_rows_and_reports_rejected_ones(caller_for):
    op = caller_for("issuance_operator")
    report = holder_import(content=EXTRACT.encode(), caller=op)
    assert (report.total, report.created, report.updated, report.unchanged) == (5, 2, 0, 0)
    rejected = {(r.line, r.national_id): set(r.errors) for r in report.rejected}
    assert rejected == {
        (3, "810002813838"): {"national_id"},
        (5, "810002813839"): {"national_id"},  # duplicate of line 2
        (6, "810000000009"): {"profession"},
    }
    assert Holder.objects.get(national_id="0751234567").departement == "69"
    event = AuditEvent.objects.get(action="holder.import")
    assert event.details["created"] == 2 and event.details["rejected"] == 3
    # which holders, not only how many (issue 11 §7)
    assert sorted(event.details["created_ids"]) == sorted(
        str(pk) for pk in Holder.objects.values_list("pk", flat=True)
    )
    assert event.details["updated_ids"] == []


def test_importing_the_same_file_twice_changes_nothing(caller_for):
    op = caller_for("issuance_operator")
    holder_import(content=EXTRACT.encode(), caller=op)
    count = AuditEvent.objects.count()
    report = holder_import(content=EXTRACT.encode(), caller=op)
    assert (report.created, report.updated, report.unchanged) == (0, 0, 2)
    assert AuditEvent.objects.count() == count


def test_import_updates_changed_holders(caller_for):
    op = caller_for("issuance_operator")
    holder_import(content=EXTRACT.encode(), caller=op)
    changed = EXTRACT.replace("|60|69003|Lyon", "|60|69004|Lyon")
    report = holder_import(content=changed.encode(), caller=op)
    assert (report.updated, report.unchanged) == (1, 1)
    durand = Holder.objects.get(national_id="0751234567")
    assert durand.postal_code == "69004"
    event = AuditEvent.objects.filter(action="holder.import").order_by("-seq").first()
    assert event is not None
    assert event.details["updated_ids"] == [str(durand.pk)]
    assert event.details["created_ids"] == []
    assert event.details["updated_fields"] == {str(durand.pk): ["postal_code"]}


@pytest.mark.parametrize(
    "content",
    [b"", b"\xff\xfe garbage", b"nom;prenom\nA;B\n"],
    ids=["empty", "not-utf8", "missing-columns"],
)
def test_broken_files_are_refused_whole(content, caller_for):
    with pytest.raises(BadInput):
        holder_import(content=content, caller=caller_for("issuance_operator"))
    assert not Holder.objects.exists()


def test_plain_english_headers_and_comma_separator(caller_for):
    content = (
        b"national_id,last_name,first_name,profession,card_type\n810002813839,Roy,Lea,21,CPF\n"
    )
    report = holder_import(content=content, caller=caller_for("issuance_operator"))
    assert report.created == 1 and Holder.objects.get().card_type == "CPF"
