"""Where to tear: the APDUs of one CPS4 run, measured on a virtual card at collection time.

The tear tests are parametrized from this measurement rather than from guessed numbers, so no
index falls beyond the run (a skipped index would look like a hidden gap). The measured run is the
host program itself (``cards.programs.cps4``) on ``cardsim``, without the server: its APDUs are
the ones a station relays after its own identification (SELECT and READ BINARY EF.SN.ICC, GET
UID). Only the certificate lengths come from the server; they decide how many UPDATE/READ BINARY
chunks a certificate takes, so the stand-in issuer makes certificates of the size the test PKI
issues, and ``test_the_tear_plan_matches_a_station_run`` checks the count against a real station
run.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, load_der_public_key
from cryptography.x509.oid import NameOID, ObjectIdentifier

from cards.programs.base import CertificateReply, CertificateRequest
from cards.programs.cps4 import Cps4Result, cps4_program
from cardsim.card import Card, KeyPool
from tests.cardsim.conftest import KEY_POOL_FILE
from tests.cardsim.program_run import cps4_inputs, drive

STATION_IDENTIFICATION_APDUS = 3
"""SELECT EF.SN.ICC, READ BINARY EF.SN.ICC, GET UID: sent by the station before it claims."""
CERTIFICATE_SIZE = 1500
"""About what the test PKI issues for cps_auth / cps_sign (1492 and 1516 bytes when measured):
7 chunks of ``CHUNK`` bytes each. Only the chunk count matters."""
_PADDING_OID = ObjectIdentifier("1.3.6.1.4.1.99999.1")  # test-only filler extension


@dataclass(frozen=True)
class TearPlan:
    """The measured run: the step behind every APDU and the APDU count at each checkpoint."""

    labels: tuple[str, ...]
    phase_ends: tuple[tuple[str, int], ...]

    @property
    def apdus(self) -> int:
        return len(self.labels)

    def sweep(self) -> list[int]:
        """Every APDU of the run (1-based, counted after the station's identification)."""
        return list(range(1, self.apdus + 1))

    def after(self, label: str) -> int:
        """The APDU that follows the last one the step ``label`` sent."""
        return max(i for i, text in enumerate(self.labels, 1) if text == label) + 1

    def sample(self) -> list[int]:
        """A handful spread across the phases: the first APDU, the middle of every stretch
        between two checkpoints, the APDUs just after the first CREATE FILE and after the close
        (repeated on resume), and the last APDU."""
        picks = {1, self.apdus, self.after("CREATE FILE EF.DIR")}
        picks.add(self.after("ACTIVATE FILE (close lifecycle)"))
        start = 0
        for _, end in self.phase_ends:
            if end > start:
                picks.add((start + 1 + end) // 2)
                start = end
        return sorted(i for i in picks if 1 <= i <= self.apdus)

    def phase_of(self, n: int) -> str:
        """The phase a tear at APDU ``n`` interrupts."""
        return next((name for name, end in self.phase_ends if n <= end), "after the last")


class _SizedIssuer:
    """Certifies the card's keys with certificates of about ``CERTIFICATE_SIZE`` bytes."""

    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        self.key = key

    def __call__(self, request: CertificateRequest) -> CertificateReply:
        out = {}
        for slot in request.public_keys:
            public = load_der_public_key(request.spki_der(slot))
            assert isinstance(public, rsa.RSAPublicKey)
            der = self._certificate(public, slot, 0)
            out[slot] = self._certificate(public, slot, max(CERTIFICATE_SIZE - len(der) - 8, 0))
        return CertificateReply(out)

    def _certificate(self, public: rsa.RSAPublicKey, slot: str, padding: int) -> bytes:
        now = dt.datetime(2025, 7, 1, tzinfo=dt.UTC)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"tear plan {slot}")])
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(public)
            .serial_number(1)
            .not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=365))
        )
        if padding:
            filler = x509.UnrecognizedExtension(_PADDING_OID, bytes(padding))
            builder = builder.add_extension(filler, critical=False)
        return builder.sign(self.key, hashes.SHA256()).public_bytes(Encoding.DER)


@functools.cache
def measure() -> TearPlan:
    """Run the program once on a blank virtual card (keys from the committed test pool)."""
    pool = KeyPool.from_pem_file(KEY_POOL_FILE)
    issuer = _SizedIssuer(pool())
    card = Card.blank("cps4", keygen=pool)
    result, trace = drive(cps4_program(cps4_inputs(card)), card, issuer)
    if not isinstance(result, Cps4Result):
        raise RuntimeError("the measuring run of the CPS4 program did not finish")
    ends = []
    for sent, checkpoint in trace.checkpoints:
        if checkpoint.completed:
            ends.append((checkpoint.phase, sent))
    return TearPlan(tuple(trace.labels), tuple(ends))
