"""Certificate renewal on an issued CPS4 card (issue 15 item 1), sans I/O.

The card stays, its key pairs and certificates change; the PIN does not. The PKCS#15 objects the
middleware reads are double-buffered in two *banks* of the application DF:

=====  =========  =======  =====================  ====================
bank   EF.PrKDF   EF.CDF   certificate EFs        key references
=====  =========  =======  =====================  ====================
A      4402       4404     C000 (auth), C001      01 (auth), 02 (sign)
B      4412       4414     C010 (auth), C011      03 (auth), 04 (sign)
=====  =========  =======  =====================  ====================

Personalization writes bank A. EF.ODF names the live bank (its PrKDF and CDF paths); a renewal
builds the other bank beside it, checks it, and switches with **one UPDATE BINARY of EF.ODF**
(the commit point), then deletes the old bank's EFs. OpenSC follows the ODF, so before the commit
it sees the old pair, after it the new pair, never neither: a tear at any APDU leaves one working
pair. The old private keys stay in their slots (the card has no key deletion command); the next
renewal generates over them.

Phases (each checkpointed; the server acts on two of them, see ``cms.services.card_renewal``):

1. ``opened``: identify the card (EF.SN.ICC, KDD), read EF.ODF (which bank is live), open SCP03
   at level 33. The chip lifecycle is closed: the card accepts GENERATE, CREATE FILE and DELETE
   FILE of EFs inside the application DF only in such a session (the issuer's post-issuance
   commands), never CREATE or DELETE of a DF or of the MF's files.
2. keys (not checkpointed: a tear means new keys): GENERATE in the spare bank's key references,
   public keys read R-MAC'd; ``CertificateRequest`` → the server issues ``cps_auth``/``cps_sign``
   **on hold** and links them as pending.
3. ``written``: CREATE the spare bank's EFs (``6A89``: there already), write the certificates and
   the bank's PrKDF and CDF, read them back.
4. ``verified``: the holder's PIN (typed at the station and filled in by it: ``Step.holder_pin``,
   never seen by the server), then one signature per new key (by key reference, before the
   middleware can see it), checked against its new certificate. The server releases the hold.
5. ``committed``: UPDATE BINARY EF.ODF naming the new bank. The server revokes the old
   certificates ``superseded``.
6. ``cleaned``: DELETE FILE of the old bank's EFs (``6A82``: already gone).

Resume (``resume=checkpoint``): the program always reads EF.ODF first. If it names the renewal's
target bank the commit happened: only the cleaning is left. Otherwise a run that reached
``verified`` commits at once, one that reached ``written`` verifies again (with the pending
certificates given as ``certificates``), anything earlier starts again with new keys.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from cards import iso7816, pkcs15, tlv
from cards.apdu import CommandApdu, ResponseApdu
from cards.errors import (
    CheckpointError,
    MalformedResponse,
    ProgramError,
    StatusWordError,
    VerificationError,
)
from cards.iso7816 import RsaPublicKey
from cards.products import CPS4, EfSpec, KeySlot, Product
from cards.programs.base import (
    Batch,
    CertificateReply,
    CertificateRequest,
    Checkpoint,
    Program,
    Reply,
    Step,
)
from cards.programs.contact import (
    card_identified,
    identify_steps,
    initialize_update_step,
    plain_step,
)
from cards.scp03 import Scp03Host, Scp03StaticKeys

__all__ = [
    "BANKS",
    "PHASES",
    "PROGRAM",
    "Bank",
    "RenewalInputs",
    "RenewalResult",
    "bank_files",
    "live_bank",
    "renewal_program",
]

PROGRAM = "cps4-certificate-renewal"
PHASES = ("opened", "written", "verified", "committed", "cleaned")
CHUNK = 0xE0
OK = (0x9000,)
DIGEST_INFO_SHA256 = bytes.fromhex("3031300d060960864801650304020105000420")
EXISTS = (0x9000, 0x6A89)
GONE = (0x9000, 0x6A82)


@dataclass(frozen=True, slots=True)
class Bank:
    """One set of PKCS#15 key and certificate objects."""

    name: str
    prkdf_fid: int
    cdf_fid: int
    key_references: Mapping[str, int]
    certificate_fids: Mapping[str, int]


BANKS = {
    "A": Bank("A", 0x4402, 0x4404, {"auth": 0x01, "sign": 0x02}, {"auth": 0xC000, "sign": 0xC001}),
    "B": Bank("B", 0x4412, 0x4414, {"auth": 0x03, "sign": 0x04}, {"auth": 0xC010, "sign": 0xC011}),
}
OTHER = {"A": "B", "B": "A"}


def _ef(product: Product, name: str) -> EfSpec:
    return next(ef for ef in product.contact.application.files if ef.name == name)


def bank_slots(product: Product, bank: Bank) -> tuple[KeySlot, ...]:
    """The product's key slots with the bank's key references and certificate EFs."""
    return tuple(
        dataclasses.replace(
            slot,
            key_reference=bank.key_references[slot.name],
            certificate_fid=bank.certificate_fids[slot.name],
        )
        for slot in product.key_slots
    )


def bank_files(product: Product, bank: Bank) -> list[tuple[EfSpec, bytes | None]]:
    """The bank's EFs (spec with the bank's FID) and the content of its two directories
    (``None``: a certificate EF, its content comes from the server)."""
    banked = dataclasses.replace(product, key_slots=bank_slots(product, bank))
    prkdf, cdf = _ef(product, "EF.PrKDF"), _ef(product, "EF.CDF")
    out: list[tuple[EfSpec, bytes | None]] = []
    for slot in product.key_slots:
        spec = _ef(product, f"EF.CERT_{slot.name.upper()}")
        out.append(
            (
                dataclasses.replace(
                    spec, fid=bank.certificate_fids[slot.name], name=f"{spec.name} ({bank.name})"
                ),
                None,
            )
        )
    out.append(
        (
            dataclasses.replace(prkdf, fid=bank.prkdf_fid, name=f"EF.PrKDF ({bank.name})"),
            pkcs15.prkdf(banked),
        )
    )
    out.append(
        (
            dataclasses.replace(cdf, fid=bank.cdf_fid, name=f"EF.CDF ({bank.name})"),
            pkcs15.cdf(banked),
        )
    )
    return out


def odf_for(product: Product, bank: Bank) -> bytes:
    """EF.ODF naming the bank's PrKDF and CDF (same length for both banks)."""
    return (
        tlv.encode(0xA0, pkcs15._path(bank.prkdf_fid))
        + tlv.encode(0xA4, pkcs15._path(bank.cdf_fid))
        + tlv.encode(0xA8, pkcs15._path(_ef(product, "EF.AODF").fid))
    )


def live_bank(product: Product, odf: bytes) -> Bank:
    """The bank EF.ODF names; MalformedResponse if it names neither."""
    for bank in BANKS.values():
        expected = odf_for(product, bank)
        if odf[: len(expected)] == expected:
            return bank
    raise MalformedResponse("READ BINARY EF.ODF", "EF.ODF names neither key bank")


@dataclass(frozen=True, slots=True)
class RenewalInputs:
    """What the server gives the program: the card's identity, its SCP03 keys, the verification
    nonce and, on a resume, the pending certificates issued for the spare bank's keys."""

    card_serial: bytes
    kdd: bytes
    scp03_keys: Scp03StaticKeys
    verification_nonce: bytes = b"CPS4 certificate renewal check"
    certificates: Mapping[str, bytes] | None = None
    product: Product = field(default=CPS4, repr=False)

    def __post_init__(self) -> None:
        if self.product.scp03 is None:
            raise ValueError(f"{self.product.name} has no issuer secure channel")
        if len(self.card_serial) != 10 or len(self.kdd) != 10:
            raise ValueError("card serial and KDD are 10 bytes each")


@dataclass(frozen=True, slots=True)
class RenewalResult:
    """What a successful run established."""

    card_serial: bytes
    bank: str
    certificates: Mapping[str, bytes]
    checkpoint: Checkpoint


class _Item:
    def __init__(self, step: Step, handler: Callable[[ResponseApdu], bytes] | None = None) -> None:
        self.step = step
        self.handler = handler
        self.response: ResponseApdu | None = None
        self.value = b""


class _Renewal:
    def __init__(
        self, inputs: RenewalInputs, resume: Checkpoint | None, rng: Callable[[int], bytes]
    ) -> None:
        self.inputs = inputs
        self.product = inputs.product
        assert self.product.scp03 is not None
        self.level = self.product.scp03.security_level
        self.channel = self.product.contact.channel
        self.df = self.product.contact.application
        self.scp = Scp03Host(inputs.scp03_keys, channel=self.channel, rng=rng)
        if resume is not None:
            if resume.program != PROGRAM or resume.product != self.product.name:
                raise CheckpointError(f"checkpoint of {resume.program} cannot resume {PROGRAM}")
            unknown = set(resume.completed) - set(PHASES)
            if unknown:
                raise CheckpointError(f"unknown phases in checkpoint: {sorted(unknown)}")
        self.completed: list[str] = list(resume.completed) if resume else []
        self.state: dict[str, str] = dict(resume.state) if resume else {}
        self.certificates: dict[str, bytes] = dict(inputs.certificates or {})
        self.public_keys: dict[str, RsaPublicKey] = {}

    # --- items and batches -------------------------------------------------------------------

    def plain(self, label: str, apdu: CommandApdu, expect: tuple[int, ...] = OK) -> _Item:
        return _Item(plain_step(self.channel, label, apdu, expect))

    def sm(self, label: str, apdu: CommandApdu, expect: tuple[int, ...] = OK) -> _Item:
        wrapped = self.scp.wrap(apdu, label)

        def handler(response: ResponseApdu) -> bytes:
            return self.scp.unwrap(wrapped, response, label).data

        return _Item(Step(label, wrapped.encode(), expect, sensitive=True), handler)

    def send(self, label: str, items: list[_Item]) -> Generator[Batch, Reply, None]:
        reply = yield Batch(label, tuple(item.step for item in items))
        if not isinstance(reply, tuple):
            raise ProgramError("a batch was answered with something other than responses")
        if len(reply) > len(items):
            raise ProgramError(f"the relay returned {len(reply)} responses for {len(items)}")
        for item, raw in zip(items, reply, strict=False):
            response = ResponseApdu.decode(raw, item.step.label)
            item.response = response
            if response.sw not in item.step.expect:
                raise StatusWordError(item.step.label, response.sw)
            item.value = item.handler(response) if item.handler else response.data
        if len(reply) != len(items):
            raise ProgramError(f"{items[len(reply)].step.label}: no response")

    def checkpoint(self, phase: str, last_step: str) -> Checkpoint:
        if phase and phase not in self.completed:
            self.completed.append(phase)
        return Checkpoint(
            program=PROGRAM,
            product=self.product.name,
            product_version=self.product.version,
            completed=tuple(self.completed),
            last_step=last_step,
            state=dict(self.state),
        )

    def done(self, phase: str) -> bool:
        return phase in self.completed

    # --- steps ------------------------------------------------------------------------------

    def open_items(self) -> tuple[list[_Item], _Item, _Item, _Item]:
        applet, select_serial, serial = (_Item(step) for step in identify_steps(self.product))
        odf_spec = _ef(self.product, "EF.ODF")
        odf = self.plain("READ BINARY EF.ODF", iso7816.read_binary(0, odf_spec.size))
        iu = _Item(initialize_update_step(self.scp))
        items = [
            applet,
            select_serial,
            serial,
            self.plain("SELECT EF.ODF", iso7816.select_path((self.df.fid, odf_spec.fid))),
            odf,
            iu,
        ]
        return items, serial, odf, iu

    def external_authenticate(self) -> _Item:
        ext = self.scp.external_authenticate(self.level)

        def handler(response: ResponseApdu) -> bytes:
            self.scp.process_external_authenticate(response)
            return b""

        return _Item(Step("EXTERNAL AUTHENTICATE (SCP03)", ext.encode(), OK, True), handler)

    def write_items(self, bank: Bank) -> tuple[list[_Item], list[tuple[str, bytes, list[_Item]]]]:
        items = [self.sm("SELECT PKCS15 DF", iso7816.select_path((self.df.fid,)))]
        reads: list[tuple[str, bytes, list[_Item]]] = []
        for ef, content in bank_files(self.product, bank):
            data = content
            if data is None:
                slot = next(n for n, fid in bank.certificate_fids.items() if fid == ef.fid)
                data = self.certificates[slot]
            fcp = iso7816.build_fcp(
                iso7816.FileControl(
                    fid=ef.fid, size=ef.size, descriptor=0x01, security=ef.security_attributes()
                )
            )
            items.append(self.sm(f"CREATE FILE {ef.name}", iso7816.create_file(fcp), EXISTS))
            items.append(self.sm(f"SELECT {ef.name}", iso7816.select_fid(ef.fid)))
            # A bank left by an earlier renewal is overwritten whole: pad to the EF's size so
            # no older object survives after the new directory entries.
            padded = data + bytes(ef.size - len(data)) if content is not None else data
            for i, command in enumerate(iso7816.update_binary_chunks(padded, CHUNK)):
                items.append(self.sm(f"UPDATE BINARY {ef.name} #{i + 1}", command))
            group = [self.sm(f"SELECT {ef.name} (read back)", iso7816.select_fid(ef.fid))]
            for offset in range(0, len(data), CHUNK):
                length = min(CHUNK, len(data) - offset)
                group.append(
                    self.sm(f"READ BINARY {ef.name} @{offset}", iso7816.read_binary(offset, length))
                )
            items += group
            reads.append((ef.name, data, group))
        return items, reads

    def verify_items(self, bank: Bank) -> list[tuple[str, _Item]]:
        nonce = self.inputs.verification_nonce
        digest_info = DIGEST_INFO_SHA256 + hashlib.sha256(nonce).digest()
        pin = self.product.pin
        out: list[tuple[str, _Item]] = []
        for slot in self.product.key_slots:
            # The holder's PIN, typed at the station: the station fills in the data of this
            # VERIFY (basic channel, outside SCP03); the server never sees it.
            out.append(
                (
                    "",
                    _Item(
                        Step(
                            f"VERIFY PIN (holder, before {slot.label})",
                            iso7816.verify(pin.reference, None).encode(),
                            OK,
                            sensitive=True,
                            holder_pin=True,
                        )
                    ),
                )
            )
            out.append(
                (
                    "",
                    self.sm(
                        f"MANAGE SECURITY ENVIRONMENT {slot.label} ({bank.name})",
                        iso7816.manage_security_environment(0xB6, bank.key_references[slot.name]),
                    ),
                )
            )
            out.append(
                (
                    slot.name,
                    self.sm(
                        f"PSO: COMPUTE DIGITAL SIGNATURE {slot.label} ({bank.name})",
                        iso7816.pso_compute_digital_signature(digest_info),
                    ),
                )
            )
        return out

    def check_signatures(self, signatures: list[tuple[str, _Item]]) -> None:
        for slot_name, item in signatures:
            if not slot_name:
                continue
            public = x509.load_der_x509_certificate(self.certificates[slot_name]).public_key()
            assert isinstance(public, rsa.RSAPublicKey)
            try:
                public.verify(
                    item.value, self.inputs.verification_nonce, padding.PKCS1v15(), hashes.SHA256()
                )
            except InvalidSignature:
                raise VerificationError(
                    f"signature by the new {slot_name} key does not verify against its certificate"
                ) from None

    def check_certificates(self, reply: CertificateReply, bank: Bank) -> None:
        for slot in self.product.key_slots:
            der = reply.certificates.get(slot.name)
            if der is None:
                raise ProgramError(f"the server sent no certificate for key slot {slot.name}")
            try:
                public = x509.load_der_x509_certificate(der).public_key()
            except ValueError as exc:
                raise ProgramError(f"certificate for {slot.name} is not DER X.509: {exc}") from exc
            if not isinstance(public, rsa.RSAPublicKey):
                raise ProgramError(f"certificate for {slot.name} does not hold an RSA key")
            key = self.public_keys[slot.name]
            numbers = public.public_numbers()
            if (numbers.n, numbers.e) != (key.modulus, key.exponent):
                raise ProgramError(f"certificate for {slot.name} certifies another key")
            size = next(
                ef.size for ef, content in bank_files(self.product, bank) if content is None
            )
            if len(der) > size:
                raise ProgramError(f"certificate for {slot.name} does not fit its EF")
            self.certificates[slot.name] = der

    # --- the program ------------------------------------------------------------------------

    def run(self) -> Generator[Any, Any, RenewalResult]:
        opening, serial, odf, iu = self.open_items()
        yield from self.send("open", opening)
        assert iu.response is not None
        card_identified(
            self.scp,
            serial.value,
            iu.response,
            card_serial=self.inputs.card_serial,
            kdd=self.inputs.kdd,
            serial_of="expected",
            kdd_of="registry's",
        )
        live = live_bank(self.product, odf.value)
        target_name = self.state.get("to_bank")
        committed = target_name == live.name and self.done("opened")
        if not committed and not (target_name and self.done("written")):
            # fresh, or a resume before the new bank was written: start again with new keys
            self.completed = []
            self.state = {"from_bank": live.name, "to_bank": OTHER[live.name]}
        source = BANKS[self.state["from_bank"]]
        target = BANKS[self.state["to_bank"]]
        if not self.done("opened"):
            yield self.checkpoint("opened", "INITIALIZE UPDATE")
        items = [self.external_authenticate()]

        if not committed and not self.done("written"):
            generated = {
                slot.name: self.sm(
                    f"GENERATE ASYMMETRIC KEY PAIR {slot.label} ({target.name})",
                    iso7816.generate_asymmetric_key_pair(
                        target.key_references[slot.name], slot.algorithm
                    ),
                )
                for slot in self.product.key_slots
            }
            yield from self.send("keys", [*items, *generated.values()])
            items = []
            for name, item in generated.items():
                self.public_keys[name] = iso7816.parse_public_key(item.value, item.step.label)
            reply = yield CertificateRequest(
                card_serial=self.inputs.card_serial,
                public_keys=dict(self.public_keys),
                profiles={s.name: s.certificate_profile for s in self.product.key_slots},
            )
            if not isinstance(reply, CertificateReply):
                raise ProgramError("a certificate request was answered with something else")
            self.check_certificates(reply, target)
            written, reads = self.write_items(target)
            yield from self.send("write", written)
            for name, content, group in reads:
                if b"".join(item.value for item in group[1:]) != content:
                    raise VerificationError(f"read back of {name} differs from what was written")
            yield self.checkpoint("written", written[-1].step.label)

        if not committed and not self.done("verified"):
            missing = {s.name for s in self.product.key_slots} - set(self.certificates)
            if missing:
                raise CheckpointError("verifying the written bank needs its certificates as input")
            signatures = self.verify_items(target)
            yield from self.send("verify", [*items, *(item for _, item in signatures)])
            items = []
            self.check_signatures(signatures)
            yield self.checkpoint("verified", "PSO: COMPUTE DIGITAL SIGNATURE")

        if not committed:
            odf_spec = _ef(self.product, "EF.ODF")
            content = odf_for(self.product, target)
            commit = [
                self.sm("SELECT EF.ODF (commit)", iso7816.select_path((self.df.fid, odf_spec.fid))),
                self.sm("UPDATE BINARY EF.ODF (commit)", iso7816.update_binary(0, content)),
            ]
            yield from self.send("commit", [*items, *commit])
            items = []
            yield self.checkpoint("committed", "UPDATE BINARY EF.ODF (commit)")
        elif not self.done("committed"):
            yield self.checkpoint("committed", "READ BINARY EF.ODF")

        deletes = [self.sm("SELECT PKCS15 DF (clean)", iso7816.select_path((self.df.fid,)))]
        for ef, _ in bank_files(self.product, source):
            deletes.append(self.sm(f"DELETE FILE {ef.name}", iso7816.delete_file(ef.fid), GONE))
        yield from self.send("clean", [*items, *deletes])
        yield self.checkpoint("cleaned", deletes[-1].step.label)
        return RenewalResult(
            card_serial=self.inputs.card_serial,
            bank=target.name,
            certificates=dict(self.certificates),
            checkpoint=self.checkpoint("", "cleaned"),
        )


def renewal_program(
    inputs: RenewalInputs,
    *,
    resume: Checkpoint | None = None,
    rng: Callable[[int], bytes] = secrets.token_bytes,
) -> Program:
    """The certificate renewal program; ``resume`` continues from a checkpoint."""
    return _Renewal(inputs, resume, rng).run()
