"""Components of the console's pages: state badges and paging links that keep the filters."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

from console import labels

register = template.Library()

# The tone of each state, whatever object it belongs to (card, request, station, certificate).
TONES = {
    "good": {"ACTIVE", "APPROVED", "COMPLETED", "active", "good", "valid", "enrolled", "printed"},
    "warn": {
        "SUSPENDED", "SUBMITTED", "ISSUED", "PERSONALIZING", "ALLOCATED", "QUEUED", "DRAFT",
        "IN_PERSONALIZATION", "pending", "on_hold", "unprinted",
    },
    "bad": {
        "REVOKED", "EXPIRED", "SPOILED", "DESTROYED", "REJECTED", "FAILED", "revoked",
        "disabled", "deceased", "left_profession", "unknown",
    },
}  # fmt: skip


@register.simple_tag
def state_badge(value: Any, label: Any = None) -> SafeString:
    """``{% state_badge card.status card.get_status_display %}``: the state as a coloured badge
    whose text (not only its colour) tells the state."""
    key = str(value)
    tone = next((name for name, states in TONES.items() if key in states), "")
    return format_html('<span class="badge {}">{}</span>', tone, label or key)


@register.simple_tag(takes_context=True)
def query_with(context: dict[str, Any], **changes: Any) -> str:
    """The current query string with some parameters replaced (paging keeps the filters)."""
    query = context["request"].GET.copy()
    for name, value in changes.items():
        query[name] = value
    return str(query.urlencode())


@register.filter
def hex(value: Any) -> str:
    """A certificate serial number in hexadecimal, as OpenSSL prints it."""
    try:
        return f"{int(value):X}"
    except (TypeError, ValueError):
        return ""


@register.simple_tag
def described_field(field: Any) -> SafeString:
    """``{% described_field field %}``: the field's widget, with ``aria-describedby`` naming its
    help text and its errors (ids of ``console/_field.html``) and ``aria-invalid`` when refused,
    so a screen reader reads why a field was refused when it gets the focus."""
    ids = [f"{field.auto_id}_helptext"] if field.help_text else []
    ids += [f"{field.auto_id}-error-{n}" for n in range(len(field.errors))]
    attrs = {"aria-describedby": " ".join(ids)} if ids else {}
    if field.errors:
        attrs["aria-invalid"] = "true"
    return SafeString(field.as_widget(attrs=attrs))


@register.filter
def code_label(value: Any, kind: str) -> Any:
    """The label of a code stored without choices (``console.labels.CODE_LABELS``)."""
    return labels.code_label(str(value or ""), kind)
