"""FilterSets of the registry's list endpoints (search by identifier, name, profession, ...)."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet

from cms.choices import (
    ApprovalStatus,
    CardStatus,
    CardType,
    HolderStatus,
    Profession,
    RequestKind,
    RequestStatus,
)
from cms.models import Card, CardRequest, CardTransitionApproval, DenyListEntry, Holder
from core.filtersets import BooleanFilter, IntegerFilter


def _name_filter(prefix: str):  # type: ignore[no-untyped-def]
    """Substring on the last name (trigram index) for 3+ characters; prefix below that."""

    def apply(queryset: QuerySet, name: str, value: str) -> QuerySet:  # type: ignore[type-arg]
        value = value.strip()
        if not value:
            return queryset
        lookup = "icontains" if len(value) >= 3 else "istartswith"
        return queryset.filter(**{f"{prefix}last_name__{lookup}": value})

    return apply


class HolderFilterSet(django_filters.FilterSet):  # type: ignore[misc]
    national_id = django_filters.CharFilter(lookup_expr="exact")
    name = django_filters.CharFilter(method=_name_filter(""))
    first_name = django_filters.CharFilter(lookup_expr="istartswith")
    profession = django_filters.ChoiceFilter(choices=Profession.choices)
    departement = django_filters.CharFilter()
    card_type = django_filters.ChoiceFilter(choices=CardType.choices)
    status = django_filters.ChoiceFilter(choices=HolderStatus.choices)

    class Meta:
        model = Holder
        fields: list[str] = []


class CardFilterSet(django_filters.FilterSet):  # type: ignore[misc]
    card_number = django_filters.CharFilter()
    chip_serial = django_filters.CharFilter(method="upper_exact")
    desfire_uid = django_filters.CharFilter(method="upper_exact")
    status = django_filters.MultipleChoiceFilter(choices=CardStatus.choices)
    holder = django_filters.UUIDFilter(field_name="holder_id")
    national_id = django_filters.CharFilter(field_name="holder__national_id")
    name = django_filters.CharFilter(method=_name_filter("holder__"))
    product = IntegerFilter(field_name="product_id")
    pool = django_filters.CharFilter(field_name="pool__code")
    card_type = django_filters.ChoiceFilter(choices=CardType.choices)
    batch = IntegerFilter(field_name="batch_id")

    class Meta:
        model = Card
        fields: list[str] = []

    def upper_exact(self, queryset: QuerySet, name: str, value: str) -> QuerySet:  # type: ignore[type-arg]
        return queryset.filter(**{name: value.strip().upper()})


class CardApprovalFilterSet(django_filters.FilterSet):  # type: ignore[misc]
    status = django_filters.ChoiceFilter(choices=ApprovalStatus.choices)
    card = django_filters.UUIDFilter(field_name="card_id")
    transition = django_filters.CharFilter()

    class Meta:
        model = CardTransitionApproval
        fields: list[str] = []


class CardRequestFilterSet(django_filters.FilterSet):  # type: ignore[misc]
    status = django_filters.MultipleChoiceFilter(choices=RequestStatus.choices)
    kind = django_filters.ChoiceFilter(choices=RequestKind.choices)
    holder = django_filters.UUIDFilter(field_name="holder_id")
    national_id = django_filters.CharFilter(field_name="holder__national_id")
    product = IntegerFilter(field_name="product_id")
    awaiting_second_approval = BooleanFilter(method="awaiting")

    class Meta:
        model = CardRequest
        fields: list[str] = []

    def awaiting(self, queryset: QuerySet, name: str, value: bool | None) -> QuerySet:  # type: ignore[type-arg]
        if value is None:
            return queryset
        q = queryset.filter(status=RequestStatus.SUBMITTED)
        return q if value else queryset.exclude(status=RequestStatus.SUBMITTED)


class DenyListFilterSet(django_filters.FilterSet):  # type: ignore[misc]
    desfire_uid = django_filters.CharFilter()
    card_number = django_filters.CharFilter()

    class Meta:
        model = DenyListEntry
        fields: list[str] = []
