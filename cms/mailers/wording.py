"""What the PIN mailer says, as data: one table per language, one entry per kind of letter.

Pure (no Django, no drawing): the letter layout reads it, the registry takes ``LetterKind`` for
its mailers' kinds.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum


class LetterKind(StrEnum):
    """Why the holder gets codes: the wording changes, the layout does not."""

    ISSUANCE = "issuance"
    NEW_CODES = "new_codes"
    RENEWAL = "renewal"


MONTHS = {
    "fr": (
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ),
    "en": (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
}

WORDS: dict[str, dict[str, str]] = {
    "fr": {
        "date": "{place}le {date}",
        "reference": "Référence",
        "card": "Carte n°",
        "return": "Retour :",
        "panel": "CODES CONFIDENTIELS",
        "pin": "Code PIN",
        "puk": "Code PUK",
        "greeting": "Madame, Monsieur,",
        "howto": "Vos codes : mode d'emploi",
        "sequence": "Lot {run} · pli {n} / {count}",
        "helpdesk": "Assistance",
    },
    "en": {
        "date": "{date}",
        "reference": "Reference",
        "card": "Card no.",
        "return": "Return:",
        "panel": "CONFIDENTIAL CODES",
        "pin": "PIN code",
        "puk": "PUK code",
        "greeting": "Dear Sir or Madam,",
        "howto": "Your codes: how to use them",
        "sequence": "Run {run} · letter {n} / {count}",
        "helpdesk": "Helpdesk",
    },
}

SUBJECT = {
    ("fr", LetterKind.ISSUANCE): "Objet : les codes confidentiels de votre carte CPS",
    ("en", LetterKind.ISSUANCE): "Subject: the confidential codes of your CPS card",
    ("fr", LetterKind.NEW_CODES): "Objet : les nouveaux codes confidentiels de votre carte CPS",
    ("en", LetterKind.NEW_CODES): "Subject: new confidential codes for your CPS card",
    ("fr", LetterKind.RENEWAL): "Objet : renouvellement de votre carte CPS, vos codes",
    ("en", LetterKind.RENEWAL): "Subject: renewal of your CPS card, your codes",
}

BODY = {
    ("fr", LetterKind.ISSUANCE): (
        "Votre carte de professionnel de santé n° {card} vous est adressée par un envoi "
        "séparé. Voici ses codes confidentiels ; ils ne vous sont communiqués qu'une fois."
    ),
    ("en", LetterKind.ISSUANCE): (
        "Your health-professional card no. {card} is sent to you separately. Here are its "
        "confidential codes; they are sent to you only once."
    ),
    ("fr", LetterKind.NEW_CODES): (
        "À votre demande, de nouveaux codes confidentiels ont été inscrits sur votre carte "
        "n° {card}. Les codes précédents ne sont plus valables."
    ),
    ("en", LetterKind.NEW_CODES): (
        "As you asked, new confidential codes were set on your card no. {card}. The previous "
        "codes no longer work."
    ),
    ("fr", LetterKind.RENEWAL): (
        "Votre carte CPS arrive à échéance. La nouvelle carte, n° {card}, vous est adressée par "
        "un envoi séparé ; voici ses codes. L'ancienne reste valable jusqu'à l'activation de la "
        "nouvelle."
    ),
    ("en", LetterKind.RENEWAL): (
        "Your CPS card is about to expire. Its replacement, card no. {card}, is sent to you "
        "separately; here are its codes. The old card keeps working until the new one is "
        "activated."
    ),
}

HOWTO = {
    "fr": (
        "Le code PIN (4 chiffres) protège votre carte : il vous est demandé pour vous "
        "authentifier et pour signer avec elle.",
        "Après 3 codes PIN erronés, la carte se bloque. Le code PUK (8 chiffres) sert "
        "uniquement à la débloquer et à choisir un nouveau code PIN.",
        "Carte bloquée ou code PUK perdu : appelez l'assistance au {phone} ; après "
        "vérification de votre identité, elle vous aide à débloquer la carte.",
        "Ne gardez jamais cette lettre avec votre carte. Mémorisez vos codes puis détruisez la "
        "lettre ; ne communiquez vos codes à personne, pas même à l'assistance.",
        "Carte perdue ou volée : appelez sans attendre le {phone} pour la faire mettre en "
        "opposition.",
        "Pli ouvert ou abîmé, ou codes que vous n'avez pas demandés : appelez le {phone}.",
    ),
    "en": (
        "The PIN code (4 digits) protects your card: you are asked for it to authenticate and "
        "to sign with the card.",
        "After 3 wrong PIN codes the card blocks. The PUK code (8 digits) only unblocks it and "
        "sets a new PIN code.",
        "Card blocked or PUK code lost: call the helpdesk on {phone}; once your identity is "
        "checked, they help you unblock the card.",
        "Never keep this letter with your card. Learn your codes, then destroy the letter; "
        "never tell your codes to anyone, the helpdesk included.",
        "Card lost or stolen: call {phone} at once to have it blocked.",
        "Letter opened or damaged, or codes you did not ask for: call {phone}.",
    ),
}

LANGUAGES = frozenset(WORDS)

# Country names as French mail writes them on an address's last line (the neighbours a French
# health professional may live in; another code is printed as it is).
COUNTRY_NAMES = {
    "AD": "Andorre",
    "BE": "Belgique",
    "CH": "Suisse",
    "DE": "Allemagne",
    "ES": "Espagne",
    "GB": "Royaume-Uni",
    "IT": "Italie",
    "LU": "Luxembourg",
    "MC": "Monaco",
}


def date_text(date: dt.date, language: str) -> str:
    """The date as a letter writes it in ``language`` (no locale of the machine involved)."""
    month = MONTHS[language][date.month - 1]
    if language == "fr":
        day = "1er" if date.day == 1 else str(date.day)
        return f"{day} {month} {date.year}"
    return f"{date.day} {month} {date.year}"
