"""Writes of the PKI app: each locks its rows, re-reads, audits in the same transaction.

One module per job (issuance, revocation, crl, ocsp, publication, hierarchy, responders);
this package re-exports their public services so callers write ``pki.services.<service>``.
"""

from pki.services.anchor import audit_anchor_sign
from pki.services.crl import DELTA_SQL, crl_due, crl_publish, crl_publish_if_due
from pki.services.hierarchy import hierarchy_init
from pki.services.issuance import KeyToCertify, certificate_issue, certificates_issue_on_hold
from pki.services.ocsp import ocsp_responses_refresh
from pki.services.publication import authority_parent_crls_publish, pki_publish_all
from pki.services.responders import ocsp_responder_renew
from pki.services.revocation import (
    authority_revoke,
    certificate_hold,
    certificate_release_hold,
    certificate_revoke,
    certificates_revoke,
)
from pki.services.status_signing import status_document_sign, status_signer_ensure

__all__ = [
    "DELTA_SQL",
    "KeyToCertify",
    "audit_anchor_sign",
    "authority_parent_crls_publish",
    "authority_revoke",
    "certificate_hold",
    "certificate_issue",
    "certificate_release_hold",
    "certificate_revoke",
    "certificates_issue_on_hold",
    "certificates_revoke",
    "crl_due",
    "crl_publish",
    "crl_publish_if_due",
    "hierarchy_init",
    "ocsp_responder_renew",
    "ocsp_responses_refresh",
    "pki_publish_all",
    "status_document_sign",
    "status_signer_ensure",
]
