"""Errors raised by the pure PKI domain."""

from __future__ import annotations


class DomainError(Exception):
    """Base class of every error of ``pki.domain``."""


class ProfileViolation(DomainError):
    """A request breaks a rule of its certificate profile; ``rule`` names the rule."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"{rule}: {message}")
        self.rule = rule
        self.message = message


class MalformedRequest(DomainError):
    """Bytes that should be a CSR or an OCSP request cannot be parsed or fail their signature."""


class MultipleCertificates(MalformedRequest):
    """An OCSP request asking about several certificates at once: a lightweight responder
    (RFC 5019 §2.1.1) handles one, and answers ``malformedRequest`` to the others."""
