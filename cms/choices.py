"""Code lists and states of the registry (TextChoices: stored values never change)."""

from __future__ import annotations

from django.db import models
from django.utils.translation import override, pgettext_lazy


def english_label(choice: models.Choices) -> str:
    """A choice's English label, lowercased, for a message of the API (in English whatever the
    request's language; the console translates the labels it shows)."""
    with override("en"):
        return str(choice.label).lower()


class Profession(models.TextChoices):
    """TRE_G15 professions (OID 1.2.250.1.71.1.2.7), code → label."""

    MEDECIN = "10", "Médecin"
    PHARMACIEN = "21", "Pharmacien"
    AUDIOPROTHESISTE = "26", "Audioprothésiste"
    OPTICIEN_LUNETIER = "28", "Opticien-Lunetier"
    CHIRURGIEN_DENTISTE = "40", "Chirurgien-Dentiste"
    SAGE_FEMME = "50", "Sage-Femme"
    INFIRMIER = "60", "Infirmier"
    INFIRMIER_PSYCHIATRIQUE = "69", "Infirmier psychiatrique"
    MASSEUR_KINESITHERAPEUTE = "70", "Masseur-Kinésithérapeute"
    PEDICURE_PODOLOGUE = "80", "Pédicure-Podologue"
    TECHNICIEN_LABORATOIRE = "86", "Technicien de laboratoire médical"
    ORTHOPHONISTE = "91", "Orthophoniste"
    ORTHOPTISTE = "92", "Orthoptiste"
    PSYCHOLOGUE = "93", "Psychologue"
    ERGOTHERAPEUTE = "94", "Ergothérapeute"
    DIETETICIEN = "95", "Diététicien"
    PSYCHOMOTRICIEN = "96", "Psychomotricien"
    MANIPULATEUR_ERM = "98", "Manipulateur ERM"


class CardType(models.TextChoices):
    """TRE_R87 card types a holder is registered for."""

    CPS = "CPS", "Carte de professionnel de santé"
    CPF = "CPF", "Carte de professionnel de santé en formation"
    CPE = "CPE", "Carte de personnel d'établissement"
    CPA = "CPA", "Carte de personnel autorisé"


class HolderStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    LEFT_PROFESSION = "left_profession", "Left the profession"
    STRUCK_OFF = "struck_off", "Struck off"
    DECEASED = "deceased", "Deceased"


class CardStatus(models.TextChoices):
    """The card states of DESIGN.md §6."""

    IN_STOCK = "IN_STOCK", pgettext_lazy("card status", "In stock")
    ALLOCATED = "ALLOCATED", pgettext_lazy("card status", "Allocated")
    PERSONALIZING = "PERSONALIZING", pgettext_lazy("card status", "Personalizing")
    ISSUED = "ISSUED", pgettext_lazy("card status", "Issued")
    ACTIVE = "ACTIVE", pgettext_lazy("card status", "Active")
    SUSPENDED = "SUSPENDED", pgettext_lazy("card status", "Suspended")
    REVOKED = "REVOKED", pgettext_lazy("card status", "Revoked")
    EXPIRED = "EXPIRED", pgettext_lazy("card status", "Expired")
    SPOILED = "SPOILED", pgettext_lazy("card status", "Spoiled")
    DESTROYED = "DESTROYED", pgettext_lazy("card status", "Destroyed")


class RevokeReason(models.TextChoices):
    """Why a card is revoked, as an operator states it; mapped to RFC 5280 in ``lifecycle``."""

    LOST = "lost", pgettext_lazy("revocation reason", "Lost")
    STOLEN = "stolen", pgettext_lazy("revocation reason", "Stolen")
    DAMAGED = "damaged", pgettext_lazy("revocation reason", "Damaged")
    HOLDER_LEFT = "holder_left", pgettext_lazy("revocation reason", "Holder left the profession")
    DECEASED = "deceased", pgettext_lazy("revocation reason", "Holder deceased")
    SUPERSEDED = "superseded", pgettext_lazy("revocation reason", "Superseded")
    COMPROMISED = "compromised", pgettext_lazy("revocation reason", "Compromised")
    STRUCK_OFF = "struck_off", pgettext_lazy("revocation reason", "Holder struck off")


class LossReason(models.TextChoices):
    """What a holder reports about a card to be replaced (cms.services.replacement)."""

    LOST = "lost", pgettext_lazy("loss reason", "Lost")
    STOLEN = "stolen", pgettext_lazy("loss reason", "Stolen")
    DAMAGED = "damaged", pgettext_lazy("loss reason", "Damaged")


class ProductStatus(models.TextChoices):
    ISSUED = "issued", "Issued (new cards are made of it)"
    LEGACY = "legacy", "Legacy (known, never newly issued)"


class RequestKind(models.TextChoices):
    NEW = "new", pgettext_lazy("request kind", "New card")
    RENEWAL = "renewal", pgettext_lazy("request kind", "Renewal")
    REPLACEMENT = "replacement", pgettext_lazy("request kind", "Replacement")
    MIGRATION = "migration", pgettext_lazy("request kind", "Migration CPS3 → CPS4")


class RequestStatus(models.TextChoices):
    DRAFT = "draft", pgettext_lazy("request status", "Draft")
    SUBMITTED = (
        "submitted",
        pgettext_lazy("request status", "Submitted (awaiting a second approver)"),
    )
    APPROVED = "approved", pgettext_lazy("request status", "Approved")
    QUEUED = "queued", pgettext_lazy("request status", "Queued for personalization")
    PERSONALIZING = "personalizing", pgettext_lazy("request status", "Personalizing")
    DONE = "done", pgettext_lazy("request status", "Done")
    REJECTED = "rejected", pgettext_lazy("request status", "Rejected")
    FAILED = "failed", pgettext_lazy("request status", "Failed")


class ApprovalStatus(models.TextChoices):
    """A card transition that waits for its second approver."""

    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved and applied"
    REJECTED = "rejected", "Rejected"


class DenyChange(models.TextChoices):
    ADD = "add", "Added"
    REMOVE = "remove", "Removed"


class DenyListKind(models.TextChoices):
    FULL = "full", "Full"
    DELTA = "delta", "Delta"


class DenyReason(models.TextChoices):
    SUSPENDED = "suspended", "Suspended"
    REVOKED = "revoked", "Revoked"
    EXPIRED = "expired", "Expired"
