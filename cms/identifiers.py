"""National identifiers of professionals (idNat_PS) and postal départements: pure functions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class IdentifierError(ValueError):
    """A national identifier that is malformed; the message says what is expected."""


class IdKind(StrEnum):
    """The prefix of idNat_PS tells which register the rest comes from (reference/cps.md §4)."""

    ADELI = "0"
    ADELI_CABINET = "1"
    FINESS = "3"
    SIREN = "4"
    SIRET = "5"
    RPPS_CABINET = "6"
    RPPS = "8"


@dataclass(frozen=True, slots=True)
class NationalId:
    kind: IdKind
    local: str  # the identifier without its prefix

    def __str__(self) -> str:
        return f"{self.kind.value}{self.local}"


_ADELI = re.compile(r"(?:\d{2}|2[AB])\d{7}")
_FINESS = re.compile(r"(?:\d{2}|2[AB])\d{7}(?:/[0-9A-Z]{1,20})?")
_DIGITS = re.compile(r"\d+")
_CABINET = re.compile(r"\d{11}(?:/[0-9A-Z]{1,20})?")


def luhn_valid(digits: str) -> bool:
    """Luhn (mod 10) check over a string of decimal digits, the last one being the check digit."""
    if not digits or not digits.isdigit():
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def luhn_digit(body: str) -> str:
    """The Luhn check digit that makes ``body`` followed by it valid (``luhn_valid``)."""
    if not body or not body.isdigit():
        raise ValueError(f"{body!r} is not a string of decimal digits")
    return next(d for d in "0123456789" if luhn_valid(body + d))


def _fixed_digits(local: str, length: int, name: str) -> None:
    if len(local) != length or not _DIGITS.fullmatch(local):
        raise IdentifierError(f"{name} must be {length} digits, got {len(local)} characters")
    if not luhn_valid(local):
        raise IdentifierError(f"{name} {local} fails its check digit (Luhn)")


def parse_national_id(raw: str) -> NationalId:
    """Validate an idNat_PS (prefix + identifier) and return it normalised (upper case, trimmed)."""
    value = raw.strip().upper()
    if len(value) < 2:
        raise IdentifierError("a national identifier is a one-digit prefix and an identifier")
    try:
        kind = IdKind(value[0])
    except ValueError:
        allowed = ", ".join(k.value for k in IdKind)
        raise IdentifierError(f"unknown prefix {value[0]!r}; expected one of {allowed}") from None
    local = value[1:]
    if kind is IdKind.RPPS:
        _fixed_digits(local, 11, "RPPS")
    elif kind in (IdKind.ADELI, IdKind.ADELI_CABINET):
        if not _ADELI.fullmatch(local):
            raise IdentifierError("ADELI must be 9 characters: département (2 digits or 2A/2B) + 7")
    elif kind is IdKind.FINESS:
        if not _FINESS.fullmatch(local):
            raise IdentifierError("FINESS must be 9 characters, optionally /internal-id")
    elif kind is IdKind.SIREN:
        _fixed_digits(local, 9, "SIREN")
    elif kind is IdKind.SIRET:
        _fixed_digits(local, 14, "SIRET")
    elif kind is IdKind.RPPS_CABINET and not _CABINET.fullmatch(local):
        raise IdentifierError("RPPS cabinet must be 11 digits, optionally /internal-id")
    return NationalId(kind=kind, local=local)


def departement_of(postal_code: str) -> str:
    """The département of a French postal code: 2 characters, 2A/2B for Corsica, 3 overseas."""
    code = postal_code.strip()
    if len(code) != 5 or not code.isdigit():
        return ""
    if code.startswith("20"):
        return "2A" if int(code) < 20200 else "2B"
    if code[:2] in ("97", "98"):
        return code[:3]
    return code[:2]
