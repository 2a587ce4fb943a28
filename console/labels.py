"""The labels the console shows for the models' choices and for codes stored raw.

The choices (``cms/choices.py``, ``cps3/choices.py``, the nested ones of ``cms.models`` and
``cps3.models``) and the helpdesk's identity methods mark their labels with ``pgettext_lazy``,
so ``get_FOO_display`` speaks the page's language. The console's catalogue is made by
``makemessages`` run inside ``console/``, which does not read those modules: the labels are
repeated here, with the same context, so that they enter it. ``tests/console/test_labels.py``
fails when this list and the choices drift apart. API responses keep the machine codes.

The codes shown without their model (an unblock event's ``outcome`` and ``identity_method``, a
wave's status in the dashboard's numbers) get their label from :func:`code_label` (the
``code_label`` template filter).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.translation import pgettext_lazy

from cms.choices import CardStatus, LossReason, RequestKind, RequestStatus, RevokeReason
from cms.models import NewCodesRequest
from cms.services.helpdesk import IDENTITY_METHODS
from cps3.choices import ExceptionKind
from cps3.models import Wave

if TYPE_CHECKING:
    from django.db.models import Choices
    from django_stubs_ext import StrOrPromise

__all__ = ["CARD_ACTIONS", "CHOICE_LABELS", "CODE_LABELS", "code_label"]

CHOICE_LABELS: dict[type[Choices], tuple[StrOrPromise, ...]] = {
    CardStatus: (
        pgettext_lazy("card status", "In stock"),
        pgettext_lazy("card status", "Allocated"),
        pgettext_lazy("card status", "Personalizing"),
        pgettext_lazy("card status", "Issued"),
        pgettext_lazy("card status", "Active"),
        pgettext_lazy("card status", "Suspended"),
        pgettext_lazy("card status", "Revoked"),
        pgettext_lazy("card status", "Expired"),
        pgettext_lazy("card status", "Spoiled"),
        pgettext_lazy("card status", "Destroyed"),
    ),
    RevokeReason: (
        pgettext_lazy("revocation reason", "Lost"),
        pgettext_lazy("revocation reason", "Stolen"),
        pgettext_lazy("revocation reason", "Damaged"),
        pgettext_lazy("revocation reason", "Holder left the profession"),
        pgettext_lazy("revocation reason", "Holder deceased"),
        pgettext_lazy("revocation reason", "Superseded"),
        pgettext_lazy("revocation reason", "Compromised"),
        pgettext_lazy("revocation reason", "Holder struck off"),
    ),
    LossReason: (
        pgettext_lazy("loss reason", "Lost"),
        pgettext_lazy("loss reason", "Stolen"),
        pgettext_lazy("loss reason", "Damaged"),
    ),
    RequestKind: (
        pgettext_lazy("request kind", "New card"),
        pgettext_lazy("request kind", "Renewal"),
        pgettext_lazy("request kind", "Replacement"),
        pgettext_lazy("request kind", "Migration CPS3 → CPS4"),
    ),
    RequestStatus: (
        pgettext_lazy("request status", "Draft"),
        pgettext_lazy("request status", "Submitted (awaiting a second approver)"),
        pgettext_lazy("request status", "Approved"),
        pgettext_lazy("request status", "Queued for personalization"),
        pgettext_lazy("request status", "Personalizing"),
        pgettext_lazy("request status", "Done"),
        pgettext_lazy("request status", "Rejected"),
        pgettext_lazy("request status", "Failed"),
    ),
    NewCodesRequest.Status: (
        pgettext_lazy("new codes status", "Waiting for a second agent's approval"),
        pgettext_lazy("new codes status", "Waiting for the card at a station"),
        pgettext_lazy("new codes status", "New codes written, mailer queued"),
        pgettext_lazy("new codes status", "Cancelled"),
    ),
    NewCodesRequest.Reason: (
        pgettext_lazy("new codes reason", "PUK forgotten"),
        pgettext_lazy("new codes reason", "PUK blocked"),
        pgettext_lazy("new codes reason", "PIN mailer lost"),
        pgettext_lazy("new codes reason", "PIN mailer never received"),
    ),
    Wave.Status: (
        pgettext_lazy("wave status", "Draft"),
        pgettext_lazy("wave status", "Awaiting a second person"),
        pgettext_lazy("wave status", "Running"),
        pgettext_lazy("wave status", "Paused"),
        pgettext_lazy("wave status", "Completed"),
        pgettext_lazy("wave status", "Cancelled"),
    ),
    ExceptionKind: (
        pgettext_lazy(
            "migration anomaly", "Row not readable (a required field is missing or malformed)"
        ),
        pgettext_lazy("migration anomaly", "Chip serial on several rows of the file"),
        pgettext_lazy("migration anomaly", "Holder unknown to the registry"),
        pgettext_lazy("migration anomaly", "Same national identifier, different identity"),
        pgettext_lazy("migration anomaly", "Holder with several active CPS3"),
        pgettext_lazy("migration anomaly", "Card already revoked"),
        pgettext_lazy("migration anomaly", "Card already expired"),
        pgettext_lazy("migration anomaly", "Certificate unknown to our PKI"),
        pgettext_lazy("migration anomaly", "Certificate differs from our PKI's record"),
    ),
}
"""Every translated choice's labels, in the order of its members."""

IDENTITY_METHOD_LABELS: tuple[StrOrPromise, ...] = (
    pgettext_lazy("identity method", "Call-back to the registered telephone number"),
    pgettext_lazy("identity method", "Questions from the registry"),
    pgettext_lazy("identity method", "In person, with an identity document (type and number)"),
)
"""The labels of ``cms.services.helpdesk.IDENTITY_METHODS``, in its order."""

CODE_LABELS: dict[str, dict[str, StrOrPromise]] = {
    "unblock_outcome": {
        "response_given": pgettext_lazy("unblock outcome", "Response given"),
        "unblocked": pgettext_lazy("unblock outcome", "Unblocked"),
        "wrong_puk": pgettext_lazy("unblock outcome", "Wrong PUK"),
        "puk_blocked": pgettext_lazy("unblock outcome", "PUK blocked"),
        "read": pgettext_lazy("unblock outcome", "Read"),
        "written": pgettext_lazy("unblock outcome", "Written"),
    },
    "identity_method": IDENTITY_METHODS,
    "wave_status": dict(Wave.Status.choices),
}
"""Labels of the codes shown without choices, by kind of code."""


def code_label(code: str, kind: str) -> StrOrPromise:
    """The label of ``code`` of that kind; the code itself when it has none (an older code)."""
    return CODE_LABELS[kind].get(code, code) if code else code


CARD_ACTIONS: dict[str, tuple[StrOrPromise, StrOrPromise]] = {
    "activate": (
        pgettext_lazy("card action", "Activate"),
        pgettext_lazy(
            "card action", "The holder received the card: its certificates are released."
        ),
    ),
    "suspend": (
        pgettext_lazy("card action", "Suspend"),
        pgettext_lazy(
            "card action", "Its certificates are put on hold and its UID goes on the deny list."
        ),
    ),
    "reinstate": (
        pgettext_lazy("card action", "Reinstate"),
        pgettext_lazy(
            "card action", "Its certificates are released and its UID leaves the deny list."
        ),
    ),
    "revoke": (
        pgettext_lazy("card action", "Revoke"),
        pgettext_lazy(
            "card action", "Its certificates are revoked for good; contactless use is refused."
        ),
    ),
    "expire": (
        pgettext_lazy("card action", "Expire"),
        pgettext_lazy("card action", "End of validity; contactless use is refused."),
    ),
    "destroy": (
        pgettext_lazy("card action", "Destroy"),
        pgettext_lazy("card action", "Physical destruction, witnessed by a second person."),
    ),
}
"""The card page's buttons: label and confirmation prompt of each transition a person may take
(``cms.lifecycle``'s summaries are the developers' words, in English)."""
