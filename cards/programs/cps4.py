"""The CPS4 personalization program (DESIGN.md §5), sans I/O.

``cps4_program(inputs)`` returns a generator speaking the protocol of ``cards.programs.base``.
The server computes every key and secret (``Cps4Inputs``); the program only sequences APDUs,
checks what comes back, and asks for certificates. Interaction with the server, in order:

1. Batches 1-2: identify the card (ATR from the station's claim, EF.SN.ICC, KDD from INITIALIZE
   UPDATE, DESFire UID) against the stock record, open SCP03 (security level 33: C-MAC, C-ENC,
   R-MAC, R-ENC) with the diversified issuer keys, create the file structure, write the identity
   data, generate both key pairs and read their public keys (R-MAC'd, so they provably come from
   this card's authenticated channel).
2. The program yields ``CertificateRequest(card_serial, public_keys, profiles)``; the server issues
   the ``cps_auth`` and ``cps_sign`` certificates and sends back ``CertificateReply({"auth": der,
   "sign": der})``. The program checks each certificate carries the key it read.
3. Batches 3-8: write the certificates, set PIN, PUK and admin key; DESFire: authenticate with the
   batch's transport key (per card, never the public factory key), set the key new applications
   get to the card's initial application key (SetConfiguration option 01), create the
   application, change the PICC master key and the application keys (from the initial key) to
   the diversified ones, create and write the files (read back), disable FormatPICC; close the chip
   lifecycle; verify (read back every written EF; PIN verify + one signature per key checked
   against its certificate; DESFire authentication with key 1).
4. A fresh run first yields an empty ``Checkpoint`` (nothing completed: persist it, a session that
   dies in its first batch can still be rolled back), then one after every completed phase
   (``PHASES``); the returned ``Cps4Result`` tells the server the card is ready to become ISSUED.

Contact and contactless commands share round trips (each step names its interface): a fresh card
takes 8 round trips. ``cps4_program(inputs, resume=checkpoint)`` continues an interrupted session
(completed phases are skipped, an interrupted DESFire phase rebuilds the application);
``cps4_rollback(inputs, checkpoint)`` wipes a card whose lifecycle is still open back to stock.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from cards import iso7816, pkcs15, tlv
from cards.apdu import CommandApdu, ResponseApdu
from cards.desfire import (
    CommMode,
    DesfireCommand,
    Ev2Authentication,
    Ev2Session,
    FileSettings,
    aid_bytes,
    create_application,
    native,
)
from cards.errors import (
    AuthenticationError,
    CardMismatch,
    CheckpointError,
    MalformedResponse,
    ProgramError,
    RollbackImpossible,
    StatusWordError,
    VerificationError,
)
from cards.iso7816 import RsaPublicKey
from cards.products import CPS4, EfSpec, Product, card_serial
from cards.programs.base import (
    CertificateReply,
    CertificateRequest,
    Checkpoint,
    Interface,
    Program,
    Step,
)
from cards.programs.contact import (
    atr_check,
    card_identified,
    external_authenticate_item,
    identify_steps,
    initialize_update_step,
    plain_step,
    sm_item,
)
from cards.programs.flow import Flow, Item, Progress, Stage, merge
from cards.scp03 import Scp03Host, Scp03StaticKeys
from cards.secret import Secret

__all__ = [
    "PHASES",
    "PROGRAM",
    "Cps4Inputs",
    "Cps4Result",
    "Identity",
    "RollbackResult",
    "Secret",
    "StockRecord",
    "cps4_program",
    "cps4_rollback",
    "desfire_identity_record",
    "ef_actua",
]

PROGRAM = "cps4-personalization"
ROLLBACK = "cps4-rollback"
PHASES = (
    "contact_structure",
    "contact_keys_certificates",
    "contact_secrets",
    "desfire_application",
    "desfire_keys_files",
    "desfire_locked",
    "contact_closed",
    "contact_verified",
    "desfire_verified",
)
"""Checkpointed phases; ``contact_closed`` onwards the card can no longer be wiped."""

CHUNK = 0xE0
"""EF write/read chunk under SCP03 level 33: 224 bytes + padding + MAC stays in a short APDU."""
OK = (0x9000,)
DF_OK = (0x9100,)
DIGEST_INFO_SHA256 = bytes.fromhex("3031300d060960864801650304020105000420")
PICC_AID = 0x000000
GET_UID = bytes.fromhex("FFCA000000")


@dataclass(frozen=True, slots=True)
class StockRecord:
    """What the registry knows of the blank card, and the ATR the station saw when claiming it."""

    card_serial: bytes
    kdd: bytes
    desfire_uid: bytes
    atr: bytes


@dataclass(frozen=True, slots=True)
class Identity:
    """Identity data written on the card; ``data_objects`` are the raw CPS_* contents (ASN.1)."""

    card_number: str
    national_id: str
    valid_from: date
    valid_until: date
    data_objects: Mapping[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Cps4Inputs:
    """Everything the program needs from the server. Keys and secrets never show in repr."""

    stock: StockRecord
    identity: Identity
    scp03_keys: Scp03StaticKeys
    desfire_transport_key: bytes = field(repr=False)
    desfire_picc_key: bytes = field(repr=False)
    """The PICC master key diversified for this card (AN10922, AID 000000)."""
    desfire_app_keys: Mapping[int, bytes] = field(repr=False)
    """Key number → AES-128 key diversified for this card (AN10922: UID ‖ AID ‖ system id)."""
    desfire_app_initial_key: bytes = field(repr=False)
    """The key the application is created with (SetConfiguration option 01 under the PICC
    session, before CreateApplication): a per-card secret, never the public default (zeros)."""
    admin_key: bytes = field(repr=False)
    pin: Secret
    puk: Secret
    access_credential: bytes = field(repr=False)
    verification_nonce: bytes = b"CPS4 personalization check"
    certificates: Mapping[str, bytes] | None = None
    """Only when resuming after the certificates were written: the DER issued then."""
    product: Product = field(default=CPS4, repr=False)
    desfire_transport_key_version: int | None = None
    """The batch's transport key version (a rollback gives the PICC key back at it); ``None``:
    the product's blank-card version."""

    def __post_init__(self) -> None:
        product = self.product
        if product.scp03 is None or product.desfire is None or product.puk is None:
            raise ValueError(f"{product.name} is not personalized by the CPS4 program")
        if len(self.stock.card_serial) != 10 or len(self.stock.kdd) != 10:
            raise ValueError("stock card serial and KDD are 10 bytes each")
        if len(self.stock.desfire_uid) != 7:
            raise ValueError("the DESFire UID is 7 bytes (random UID is off)")
        if card_serial(self.identity.card_number) != self.stock.card_serial:
            raise ValueError("identity card number and stock serial differ")
        if (
            self.scp03_keys.kvn != product.scp03.kvn
            or len(self.scp03_keys.enc) != product.scp03.key_length
        ):
            raise ValueError("SCP03 keys do not match the product's key version and length")
        for name, key in (
            ("transport", self.desfire_transport_key),
            ("PICC", self.desfire_picc_key),
            ("initial application", self.desfire_app_initial_key),
            ("admin", self.admin_key),
        ):
            if len(key) != 16:
                raise ValueError(f"the {name} key must be AES-128")
        if self.desfire_app_initial_key == bytes(16):
            raise ValueError("the initial application key must not be the public default (zeros)")
        if sorted(self.desfire_app_keys) != [k.key_no for k in product.desfire.keys]:
            raise ValueError("one diversified key per DESFire application key number is needed")
        if any(len(k) != 16 for k in self.desfire_app_keys.values()):
            raise ValueError("DESFire application keys must be AES-128")
        for secret, policy in ((self.pin, product.pin), (self.puk, product.puk)):
            value = secret.reveal()
            if not policy.min_length <= len(value) <= policy.max_length or not (
                value.isascii() and value.isdigit()
            ):
                raise ValueError(f"{policy.name} does not follow the product's policy")
        sizes = {ef.name: ef.size for ef in product.contact.application.files}
        for name, content in self.identity.data_objects.items():
            if name not in sizes or not name.startswith("CPS_"):
                raise ValueError(f"{product.name} has no data object {name}")
            if len(content) > sizes[name]:
                raise ValueError(f"{name} content exceeds its {sizes[name]}-byte file")
        access = next(f for f in product.desfire.files if f.content == "access_credential")
        if not 1 <= len(self.access_credential) <= access.size:
            raise ValueError("access credential does not fit its DESFire file")
        if len(desfire_identity_record(self.identity)) > next(
            f.size for f in product.desfire.files if f.content == "identity_record"
        ):
            raise ValueError("identity record does not fit its DESFire file")


@dataclass(frozen=True, slots=True)
class Cps4Result:
    """What a successful run established."""

    card_serial: bytes
    desfire_uid: bytes
    public_keys: Mapping[str, RsaPublicKey]
    certificates: Mapping[str, bytes]
    checkpoint: Checkpoint


@dataclass(frozen=True, slots=True)
class RollbackResult:
    """What a rollback removed."""

    card_serial: bytes
    deleted_files: tuple[str, ...]
    desfire_application_deleted: bool
    checkpoint: Checkpoint


def ef_actua(identity: Identity) -> bytes:
    """EF_ACTUA content: ``EC{81 start, 82 end}``, dates as ASCII ``YYYYMMDD``."""
    return tlv.encode(
        0xEC,
        [
            tlv.Tlv(0x81, identity.valid_from.strftime("%Y%m%d").encode()),
            tlv.Tlv(0x82, identity.valid_until.strftime("%Y%m%d").encode()),
        ],
    )


def desfire_identity_record(identity: Identity) -> bytes:
    """DESFire identity record: ``E1{80 national id, 81 card number, 82 valid until YYYYMMDD}``."""
    return tlv.encode(
        0xE1,
        [
            tlv.Tlv(0x80, identity.national_id.encode()),
            tlv.Tlv(0x81, identity.card_number.encode()),
            tlv.Tlv(0x82, identity.valid_until.strftime("%Y%m%d").encode()),
        ],
    )


def _pin_bytes(secret: Secret) -> bytes:
    return secret.reveal().encode("ascii")


class _Runner:
    """State shared by the contact and DESFire flows of one program run."""

    def __init__(
        self,
        inputs: Cps4Inputs,
        resume: Checkpoint | None,
        rng: Callable[[int], bytes],
        program: str = PROGRAM,
    ) -> None:
        self.inputs = inputs
        self.product = inputs.product
        assert self.product.scp03 is not None and self.product.desfire is not None
        self.scp03_profile = self.product.scp03
        self.app = self.product.desfire
        self.channel = self.product.contact.channel
        self.rng = rng
        self.program = program
        self.resuming = resume is not None
        completed = list(resume.completed) if resume else []
        if resume is not None:
            if resume.program != PROGRAM or (resume.product, resume.product_version) != (
                self.product.name,
                self.product.version,
            ):
                raise CheckpointError(
                    f"checkpoint of {resume.program} for {resume.product} "
                    f"v{resume.product_version} cannot resume {PROGRAM} for {self.product.name} "
                    f"v{self.product.version}"
                )
            unknown = set(completed) - set(PHASES)
            if unknown:
                raise CheckpointError(f"unknown phases in checkpoint: {sorted(unknown)}")
        self.progress = Progress(events=set(completed), completed=completed)
        self.scp = Scp03Host(inputs.scp03_keys, channel=self.channel, rng=rng)
        self.state: dict[str, str] = dict(resume.state) if resume else {}
        self.state.setdefault("picc_key", "transport")
        self.public_keys: dict[str, RsaPublicKey] = {}
        self.certificates: dict[str, bytes] = dict(inputs.certificates or {})
        self.desfire_uid = b""
        self.card_serial = b""
        self._ef_contents: tuple[tuple[EfSpec, tuple[int, ...], bytes], ...] | None = None
        # The keys of the certificates checked in this run, for the final signature check.
        self._certified: dict[str, rsa.RSAPublicKey] = {}

    def done(self, phase: str) -> bool:
        return phase in self.progress.completed

    def checkpoint(self, completed: tuple[str, ...], last_step: str) -> Checkpoint:
        return Checkpoint(
            program=self.program,
            product=self.product.name,
            product_version=self.product.version,
            completed=completed,
            last_step=last_step,
            state=dict(self.state),
        )

    # --- item helpers ----------------------------------------------------------------------

    def plain(self, label: str, apdu: CommandApdu, expect: tuple[int, ...] = OK) -> Item:
        """A contact command outside the secure channel, on the applet's channel."""
        return Item([plain_step(self.channel, label, apdu, expect)])

    def sm(
        self,
        label: str,
        apdu: CommandApdu,
        expect: tuple[int, ...] = OK,
        *,
        sensitive: bool = False,
    ) -> Item:
        """A contact command wrapped in SCP03; its handler checks the R-MAC before any data."""
        return sm_item(self.scp, label, apdu, expect, sensitive=sensitive)

    def df_plain(
        self,
        label: str,
        apdu: CommandApdu,
        expect: tuple[int, ...] = DF_OK,
        *,
        sensitive: bool = False,
    ) -> Item:
        """A contactless command outside EV2 secure messaging."""
        return Item([Step(label, apdu.encode(), expect, sensitive, Interface.CONTACTLESS)])

    def df(
        self, session: Ev2Session, command: DesfireCommand, label: str, *, sensitive: bool = False
    ) -> Item:
        """A DESFire command in EV2 secure messaging; its handler checks the MAC before any data."""
        steps = [
            Step(
                f"{label} (frame {i + 1})",
                frame.encode(),
                (0x91AF,),
                sensitive,
                Interface.CONTACTLESS,
            )
            for i, frame in enumerate(command.frames[:-1])
        ]
        steps.append(
            Step(label, command.frames[-1].encode(), DF_OK, sensitive, Interface.CONTACTLESS)
        )

        def handler(responses: list[ResponseApdu]) -> bytes:
            return session.finish(command, responses[-1], label)

        return Item(steps, handler)

    def select_desfire(self, aid: int, label: str) -> Item:
        return self.df_plain(label, native(0x5A, aid_bytes(aid)))

    def auth_start(self, key_no: int, key: bytes, label: str) -> tuple[Ev2Authentication, Item]:
        auth = Ev2Authentication(key_no, key, rng=self.rng)
        return auth, self.df_plain(f"{label} (part 1)", auth.start(), (0x91AF,), sensitive=True)

    def auth_finish(
        self, auth: Ev2Authentication, part1: Item, label: str
    ) -> tuple[Item, list[Ev2Session]]:
        holder: list[Ev2Session] = []
        part2 = auth.answer(part1.response)

        def handler(responses: list[ResponseApdu]) -> bytes:
            holder.append(auth.finish(responses[-1]))
            return b""

        step = Step(f"{label} (part 2)", part2.encode(), DF_OK, True, Interface.CONTACTLESS)
        return Item([step], handler), holder

    def desfire_key(self, key_no: int) -> bytes:
        return self.inputs.desfire_app_keys[key_no]

    # --- expected file contents ------------------------------------------------------------

    def ef_contents(self) -> list[tuple[EfSpec, tuple[int, ...], bytes]]:
        """Every EF the program writes: spec, path from the MF, content (rendered once: the
        structure is written and read back from the same contents)."""
        if self._ef_contents is None:
            self._ef_contents = tuple(self._render_ef_contents())
        return list(self._ef_contents)

    def _render_ef_contents(self) -> list[tuple[EfSpec, tuple[int, ...], bytes]]:
        serial = self.inputs.stock.card_serial
        rendered = pkcs15.render(self.product, serial)
        out: list[tuple[EfSpec, tuple[int, ...], bytes]] = []
        for ef in self.product.contact.mf_files:
            if ef.content == "pkcs15":
                out.append((ef, (ef.fid,), rendered[ef.name]))
            elif ef.content == "actua":
                out.append((ef, (ef.fid,), ef_actua(self.inputs.identity)))
        df = self.product.contact.application
        for ef in df.files:
            path = (df.fid, ef.fid)
            if ef.content == "pkcs15":
                out.append((ef, path, rendered[ef.name]))
            elif ef.content == "identity" and ef.name in self.inputs.identity.data_objects:
                out.append((ef, path, self.inputs.identity.data_objects[ef.name]))
        return out

    def certificate_contents(self) -> list[tuple[EfSpec, tuple[int, ...], bytes]]:
        df = self.product.contact.application
        out: list[tuple[EfSpec, tuple[int, ...], bytes]] = []
        for slot in self.product.key_slots:
            ef = next(e for e in df.files if e.fid == slot.certificate_fid)
            out.append((ef, (df.fid, ef.fid), self.certificates[slot.name]))
        return out

    # --- contact flow ------------------------------------------------------------------------

    def identify_contact(self) -> Generator[Stage, None, Item]:
        """Stage 1: select the applet, read EF.SN.ICC, INITIALIZE UPDATE; check the card."""
        stock = self.inputs.stock
        atr_check(self.product, stock.atr)
        items = [Item([step]) for step in identify_steps(self.product)]
        iu = Item([initialize_update_step(self.scp)])
        yield Stage([*items, iu], emits=("contact_identified",))
        self.card_serial = items[2].value
        card_identified(
            self.scp,
            self.card_serial,
            iu.response,
            card_serial=stock.card_serial,
            kdd=stock.kdd,
            serial_of="expected",
            kdd_of="stock record's",
        )
        return iu

    def external_authenticate(self) -> Item:
        return external_authenticate_item(self.scp, self.scp03_profile.security_level)

    def write_ef(
        self, ef: EfSpec, content: bytes, *, create: bool, path: tuple[int, ...] | None
    ) -> list[Item]:
        items: list[Item] = []
        if create:
            fcp = iso7816.build_fcp(
                iso7816.FileControl(
                    fid=ef.fid, size=ef.size, descriptor=0x01, security=ef.security_attributes()
                )
            )
            expect = (0x9000, 0x6A89) if self.resuming else OK
            items.append(self.sm(f"CREATE FILE {ef.name}", iso7816.create_file(fcp), expect))
            if self.resuming:
                items.append(self.sm(f"SELECT {ef.name}", iso7816.select_fid(ef.fid)))
        elif path is not None:
            items.append(self.sm(f"SELECT {ef.name}", iso7816.select_path(path)))
        for i, command in enumerate(iso7816.update_binary_chunks(content, CHUNK)):
            items.append(self.sm(f"UPDATE BINARY {ef.name} #{i + 1}", command))
        return items

    def structure_items(self) -> list[Item]:
        """Create MF files, the PKCS#15 DF and its EFs, and write their contents."""
        contents = {ef.fid: content for ef, _, content in self.ef_contents()}
        items = [self.sm("SELECT MF", iso7816.select_fid(0x3F00))]
        for ef in self.product.contact.mf_files:
            if ef.content == "manufacturer":
                continue
            items += self.write_ef(ef, contents[ef.fid], create=True, path=None)
        df = self.product.contact.application
        fcp = iso7816.build_fcp(
            iso7816.FileControl(
                fid=df.fid, descriptor=0x38, df_name=df.aid, security=df.security_attributes()
            )
        )
        expect = (0x9000, 0x6A89) if self.resuming else OK
        items.append(self.sm(f"CREATE FILE {df.name} DF", iso7816.create_file(fcp), expect))
        if self.resuming:
            items.append(self.sm(f"SELECT {df.name} DF", iso7816.select_path((df.fid,))))
        for ef in df.files:
            if ef.fid in contents:
                items += self.write_ef(ef, contents[ef.fid], create=True, path=None)
            else:
                fcp = iso7816.build_fcp(
                    iso7816.FileControl(
                        fid=ef.fid, size=ef.size, descriptor=0x01, security=ef.security_attributes()
                    )
                )
                items.append(self.sm(f"CREATE FILE {ef.name}", iso7816.create_file(fcp), expect))
        return items

    def generate_items(self) -> dict[str, Item]:
        out = {}
        for slot in self.product.key_slots:
            apdu = iso7816.generate_asymmetric_key_pair(slot.key_reference, slot.algorithm)
            out[slot.name] = self.sm(f"GENERATE ASYMMETRIC KEY PAIR {slot.label}", apdu)
        return out

    def check_certificates(self, reply: CertificateReply) -> None:
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
            numbers = public.public_numbers()
            key = self.public_keys[slot.name]
            if (numbers.n, numbers.e) != (key.modulus, key.exponent):
                raise ProgramError(
                    f"certificate for {slot.name} certifies another key than the card's"
                )
            if len(der) > slot_ef_size(self.product, slot.certificate_fid):
                raise ProgramError(f"certificate for {slot.name} does not fit its EF")
            self.certificates[slot.name] = der
            self._certified[slot.name] = public

    def certificate_key(self, slot_name: str) -> rsa.RSAPublicKey:
        """The key of a certificate given as input (a run resumed after they were written)."""
        public = x509.load_der_x509_certificate(self.certificates[slot_name]).public_key()
        assert isinstance(public, rsa.RSAPublicKey)
        return public

    def secrets_items(self) -> list[Item]:
        product = self.product
        assert product.puk is not None and product.admin_key_reference is not None
        version = product.admin_key_version or 0
        return [
            self.sm(
                "CHANGE REFERENCE DATA (set PIN)",
                iso7816.change_reference_data(product.pin.reference, _pin_bytes(self.inputs.pin)),
                sensitive=True,
            ),
            self.sm(
                "CHANGE REFERENCE DATA (set PUK)",
                iso7816.change_reference_data(product.puk.reference, _pin_bytes(self.inputs.puk)),
                sensitive=True,
            ),
            self.sm(
                "CHANGE REFERENCE DATA (set admin key)",
                iso7816.change_reference_data(
                    product.admin_key_reference, bytes([version]) + self.inputs.admin_key
                ),
                sensitive=True,
            ),
        ]

    def read_back_items(
        self, contents: list[tuple[EfSpec, tuple[int, ...], bytes]]
    ) -> list[tuple[str, bytes, list[Item]]]:
        out = []
        for ef, path, content in contents:
            items = [self.sm(f"SELECT {ef.name} (read back)", iso7816.select_path(path))]
            for offset in range(0, len(content), CHUNK):
                length = min(CHUNK, len(content) - offset)
                items.append(
                    self.sm(f"READ BINARY {ef.name} @{offset}", iso7816.read_binary(offset, length))
                )
            out.append((ef.name, content, items))
        return out

    def signature_items(self) -> list[tuple[str, Item]]:
        digest_info = DIGEST_INFO_SHA256 + hashlib.sha256(self.inputs.verification_nonce).digest()
        out = []
        for slot in self.product.key_slots:
            out.append(
                (
                    "",
                    self.sm(
                        f"VERIFY PIN (before {slot.label})",
                        iso7816.verify(self.product.pin.reference, _pin_bytes(self.inputs.pin)),
                        sensitive=True,
                    ),
                )
            )
            out.append(
                (
                    "",
                    self.sm(
                        f"MANAGE SECURITY ENVIRONMENT {slot.label}",
                        iso7816.manage_security_environment(0xB6, slot.key_reference),
                    ),
                )
            )
            out.append(
                (
                    slot.name,
                    self.sm(
                        f"PSO: COMPUTE DIGITAL SIGNATURE {slot.label}",
                        iso7816.pso_compute_digital_signature(digest_info),
                    ),
                )
            )
        return out

    def contact_flow(self) -> Flow:
        yield from self.identify_contact()
        items = [self.external_authenticate()]
        emits: tuple[str, ...] = ()
        if not self.done("contact_structure"):
            items += self.structure_items()
            emits = ("contact_structure",)
        generated: dict[str, Item] = {}
        if not self.done("contact_keys_certificates"):
            generated = self.generate_items()
            items += generated.values()
        yield Stage(items, emits=emits)

        items = []
        emits = ()
        if generated:
            for name, item in generated.items():
                self.public_keys[name] = iso7816.parse_public_key(item.value, item.steps[-1].label)
            reply = yield CertificateRequest(
                card_serial=self.card_serial,
                public_keys=dict(self.public_keys),
                profiles={s.name: s.certificate_profile for s in self.product.key_slots},
            )
            assert reply is not None
            self.check_certificates(reply)
            for ef, path, content in self.certificate_contents():
                items += self.write_ef(ef, content, create=False, path=path)
            emits += ("contact_keys_certificates",)
        if not self.done("contact_secrets"):
            items += self.secrets_items()
            emits += ("contact_secrets",)
        if items:
            yield Stage(items, emits=emits)

        items = []
        emits = ()
        if not self.done("contact_closed"):
            items += [
                self.sm("SELECT MF (close)", iso7816.select_fid(0x3F00)),
                self.sm("ACTIVATE FILE (close lifecycle)", iso7816.activate_file()),
            ]
            emits += ("contact_closed",)
        items.append(  # PIN-protected data objects are read back too
            self.sm(
                "VERIFY PIN (read back)",
                iso7816.verify(self.product.pin.reference, _pin_bytes(self.inputs.pin)),
                sensitive=True,
            )
        )
        read_back = self.read_back_items(self.ef_contents() + self.certificate_contents())
        for _, _, group in read_back:
            items += group
        signatures = self.signature_items()
        items += [item for _, item in signatures]
        yield Stage(items, needs="desfire_locked", emits=(*emits, "contact_verified"))

        for name, content, group in read_back:
            if b"".join(item.value for item in group[1:]) != content:
                raise VerificationError(f"read back of {name} differs from what was written")
        nonce = self.inputs.verification_nonce
        for slot_name, item in signatures:
            if not slot_name:
                continue
            public = self._certified.get(slot_name)
            if public is None:
                public = self.certificate_key(slot_name)
            try:
                public.verify(item.value, nonce, padding.PKCS1v15(), hashes.SHA256())
            except InvalidSignature:
                raise VerificationError(
                    f"signature by key {slot_name} does not verify against its certificate"
                ) from None

    # --- DESFire flow ------------------------------------------------------------------------

    def picc_key(self) -> bytes:
        if self.state["picc_key"] == "diversified":
            return self.inputs.desfire_picc_key
        return self.inputs.desfire_transport_key

    def desfire_recover(self, uid_item: Item | None) -> Generator[Stage, None, Ev2Session]:
        """Resume/rollback path: find the PICC key in force, delete our application if present."""
        first = self.state["picc_key"]
        candidates = [first, "transport" if first == "diversified" else "diversified"]
        session: Ev2Session | None = None
        for name in candidates:
            self.state["picc_key"] = name
            auth, part1 = self.auth_start(0, self.picc_key(), "AuthenticateEV2First PICC")
            items = [self.select_desfire(PICC_AID, "SelectApplication PICC"), part1]
            if uid_item is not None:
                items.insert(0, uid_item)
                uid_item = None
            yield Stage(items)
            part2_apdu = auth.answer(part1.response)
            part2 = self.df_plain(
                "AuthenticateEV2First PICC (part 2)", part2_apdu, (0x9100, 0x91AE), sensitive=True
            )
            yield Stage([part2])
            if part2.response.sw == 0x9100:
                session = auth.finish(part2.response)
                break
        if session is None:
            raise AuthenticationError(
                "AuthenticateEV2First PICC",
                "neither the transport nor the diversified PICC key works",
            )
        listing = self.df(session, session.prepare(0x6A), "GetApplicationIDs")
        yield Stage([listing])
        aids = listing.value
        if len(aids) % 3:
            raise MalformedResponse("GetApplicationIDs", f"{len(aids)} bytes is not a list of AIDs")
        present = aid_bytes(self.app.aid) in {aids[i : i + 3] for i in range(0, len(aids), 3)}
        self.state["desfire_app_deleted"] = "no"
        if present:
            delete = self.df(
                session, session.prepare(0xDA, aid_bytes(self.app.aid)), "DeleteApplication"
            )
            yield Stage([delete])
            self.state["desfire_app_deleted"] = "yes"
        return session

    def desfire_flow(self) -> Flow:
        uid = self.df_plain("GET UID (PC/SC)", CommandApdu.decode(GET_UID), OK)
        uid_checked = False

        def check_uid() -> None:
            self.desfire_uid = uid.value
            if self.desfire_uid != self.inputs.stock.desfire_uid:
                raise CardMismatch(
                    f"DESFire UID {self.desfire_uid.hex().upper()} is not the stock record's"
                )

        rebuild = not self.done("desfire_keys_files")
        if self.resuming and rebuild:
            picc = yield from self.desfire_recover(uid)
            check_uid()
            uid_checked = True
            del picc  # the recovery session is not reused: the main path authenticates afresh
        if rebuild:
            auth, part1 = self.auth_start(0, self.picc_key(), "AuthenticateEV2First PICC")
            first = [self.select_desfire(PICC_AID, "SelectApplication PICC"), part1]
            yield Stage(first if uid_checked else [uid, *first])
            if not uid_checked:
                check_uid()
                uid_checked = True
            part2, holder = self.auth_finish(auth, part1, "AuthenticateEV2First PICC")
            yield Stage([part2])
            session = holder[0]
            initial = self.inputs.desfire_app_initial_key
            items = [
                # The application's keys start as this card's secret, not as the public zeros:
                # no session over the relay is keyed by a public value (ADR 0018).
                self.df(
                    session,
                    session.set_configuration(0x01, initial + bytes(8) + b"\x00"),
                    "SetConfiguration (default application key)",
                    sensitive=True,
                ),
                self.df(
                    session,
                    session.create_application(
                        create_application(self.app.aid, self.app.ks1, self.app.ks2)
                    ),
                    "CreateApplication",
                ),
            ]
            if self.state["picc_key"] == "transport":
                items.append(
                    self.df(
                        session,
                        session.change_key(
                            0, self.inputs.desfire_picc_key, self.app.picc_key_version
                        ),
                        "ChangeKey PICC master",
                        sensitive=True,
                    )
                )
            app_auth, app_part1 = self.auth_start(0, initial, "AuthenticateEV2First app key 0")
            items += [self.select_desfire(self.app.aid, "SelectApplication CPS"), app_part1]
            self.state["picc_key"] = "diversified"
            yield Stage(items, emits=("desfire_application",))

            part2, holder = self.auth_finish(app_auth, app_part1, "AuthenticateEV2First app key 0")
            yield Stage([part2])
            session = holder[0]
            items = []
            for key in self.app.keys:
                if key.key_no == 0:
                    continue
                command = session.change_key(
                    key.key_no, self.desfire_key(key.key_no), key.version, initial
                )
                items.append(
                    self.df(session, command, f"ChangeKey app key {key.key_no}", sensitive=True)
                )
            contents = {
                "identity_record": desfire_identity_record(self.inputs.identity),
                "access_credential": self.inputs.access_credential,
            }
            reads: list[tuple[str, bytes, Item]] = []
            for f in self.app.files:
                settings = FileSettings(
                    f.file_no, f.size, f.comm_mode, f.read, f.write, f.read_write, f.change
                )
                items.append(
                    self.df(
                        session,
                        session.create_std_data_file(settings),
                        f"CreateStdDataFile {f.name}",
                    )
                )
            for f in self.app.files:
                data = contents[f.content]
                mode = CommMode.FULL if f.comm_mode == 0x03 else CommMode.MAC
                items.append(
                    self.df(
                        session,
                        session.write_data(f.file_no, 0, data, mode),
                        f"WriteData {f.name}",
                        sensitive=True,
                    )
                )
                read = self.df(
                    session,
                    session.read_data(f.file_no, 0, len(data), mode),
                    f"ReadData {f.name}",
                    sensitive=True,
                )
                items.append(read)
                reads.append((f.name, data, read))
            master = self.app.keys[0]
            items.append(
                self.df(
                    session,
                    session.change_key(0, self.desfire_key(0), master.version),
                    "ChangeKey app key 0",
                    sensitive=True,
                )
            )
            picc_auth, picc_part1 = self.auth_start(
                0, self.inputs.desfire_picc_key, "AuthenticateEV2First PICC"
            )
            items += [self.select_desfire(PICC_AID, "SelectApplication PICC"), picc_part1]
            yield Stage(items, emits=("desfire_keys_files",))
            for name, data, read in reads:
                if read.value != data:
                    raise VerificationError(
                        f"DESFire read back of {name} differs from what was written"
                    )
        elif not self.done("desfire_locked"):
            picc_auth, picc_part1 = self.auth_start(
                0, self.inputs.desfire_picc_key, "AuthenticateEV2First PICC"
            )
            yield Stage([uid, self.select_desfire(PICC_AID, "SelectApplication PICC"), picc_part1])
            check_uid()
            uid_checked = True
        if not self.done("desfire_locked"):
            part2, holder = self.auth_finish(picc_auth, picc_part1, "AuthenticateEV2First PICC")
            yield Stage([part2])
            session = holder[0]
            lock = [
                self.df(
                    session,
                    session.set_configuration(0x00, bytes([self.app.picc_configuration])),
                    "SetConfiguration (disable FormatPICC)",
                )
            ]
        else:
            lock = []
        verify_auth, verify_part1 = self.auth_start(
            1, self.desfire_key(1), "AuthenticateEV2First app key 1"
        )
        tail = [self.select_desfire(self.app.aid, "SelectApplication CPS (verify)"), verify_part1]
        if not uid_checked:
            tail.insert(0, uid)
        if lock:
            yield Stage(lock, emits=("desfire_locked",), tail=tail, tail_needs="contact_closed")
        else:
            yield Stage(tail, needs="contact_closed")
        if not uid_checked:
            check_uid()
        part2, holder = self.auth_finish(
            verify_auth, verify_part1, "AuthenticateEV2First app key 1"
        )
        yield Stage([part2], emits=("desfire_verified",))

    # --- whole program -----------------------------------------------------------------------

    def run(self) -> Generator[Any, Any, Cps4Result]:
        slots = {s.name for s in self.product.key_slots}
        if self.done("contact_keys_certificates") and set(self.certificates) != slots:
            raise CheckpointError(
                "resuming after the certificates were written needs them as input"
            )
        if not self.resuming:
            yield self.checkpoint((), "")  # a session that dies before any phase can roll back
        yield from merge(
            [self.contact_flow(), self.desfire_flow()],
            phases=PHASES,
            progress=self.progress,
            checkpoint=self.checkpoint,
        )
        if not self.public_keys:
            for slot in self.product.key_slots:
                numbers = self.certificate_key(slot.name).public_numbers()
                self.public_keys[slot.name] = RsaPublicKey(numbers.n, numbers.e)
        return Cps4Result(
            card_serial=self.card_serial,
            desfire_uid=self.desfire_uid,
            public_keys=dict(self.public_keys),
            certificates=dict(self.certificates),
            checkpoint=self.checkpoint(tuple(self.progress.completed), "verified"),
        )


def slot_ef_size(product: Product, fid: int) -> int:
    """Size of the EF with this FID in the application DF."""
    return next(ef.size for ef in product.contact.application.files if ef.fid == fid)


def cps4_program(
    inputs: Cps4Inputs,
    *,
    resume: Checkpoint | None = None,
    rng: Callable[[int], bytes] = secrets.token_bytes,
) -> Program:
    """The CPS4 personalization program; ``resume`` continues from a checkpoint."""
    return _Runner(inputs, resume, rng).run()


class _Rollback(_Runner):
    """Wipe a card whose lifecycle is open: delete the contact files, DESFire application, keys."""

    def __init__(
        self, inputs: Cps4Inputs, checkpoint: Checkpoint, rng: Callable[[int], bytes]
    ) -> None:
        super().__init__(inputs, checkpoint, rng, ROLLBACK)
        if self.done("contact_closed"):
            raise RollbackImpossible(
                f"card {inputs.stock.card_serial.hex().upper()}: lifecycle closed, it cannot be "
                "wiped; mark it SPOILED"
            )
        self.deleted: list[str] = []
        self.app_deleted = False

    def contact_wipe(self) -> Flow:
        yield from self.identify_contact()
        not_found = (0x9000, 0x6A82)
        df = self.product.contact.application
        removable = [ef for ef in self.product.contact.mf_files if ef.content != "manufacturer"]
        items = [self.external_authenticate(), self.sm("SELECT MF", iso7816.select_fid(0x3F00))]
        deletes = [
            (df.name, self.sm(f"DELETE FILE {df.name} DF", iso7816.delete_file(df.fid), not_found))
        ]
        deletes += [
            (ef.name, self.sm(f"DELETE FILE {ef.name}", iso7816.delete_file(ef.fid), not_found))
            for ef in removable
        ]
        yield Stage(items + [item for _, item in deletes])
        self.deleted = [name for name, item in deletes if item.response.sw == 0x9000]

    def desfire_wipe(self) -> Flow:
        uid = self.df_plain("GET UID (PC/SC)", CommandApdu.decode(GET_UID), OK)
        session = yield from self.desfire_recover(uid)
        self.desfire_uid = uid.value
        if self.desfire_uid != self.inputs.stock.desfire_uid:
            raise CardMismatch(
                f"DESFire UID {self.desfire_uid.hex().upper()} is not the stock record's"
            )
        self.app_deleted = self.state.get("desfire_app_deleted") == "yes"
        assert self.product.blank is not None
        # No "enable FormatPICC": on a DESFire EV2 the PICC configuration bits only ever go one
        # way. A card torn after "disable FormatPICC" goes back to stock with it disabled, which
        # the next personalization sets again anyway (docs/cardsim.md).
        items = []
        if self.state["picc_key"] == "diversified":
            items.append(
                self.df(
                    session,
                    session.change_key(
                        0,
                        self.inputs.desfire_transport_key,
                        self.product.blank.desfire_transport_key_version
                        if self.inputs.desfire_transport_key_version is None
                        else self.inputs.desfire_transport_key_version,
                    ),
                    "ChangeKey PICC master (back to transport)",
                    sensitive=True,
                )
            )
        if items:
            yield Stage(items)
        self.state["picc_key"] = "transport"

    def run_rollback(self) -> Generator[Any, Any, RollbackResult]:
        try:
            yield from merge(
                [self.contact_wipe(), self.desfire_wipe()],
                phases=(),
                progress=self.progress,
                checkpoint=self.checkpoint,
            )
        except StatusWordError as exc:
            if exc.sw == 0x6985 and exc.command.startswith("DELETE FILE"):
                raise RollbackImpossible(
                    f"card {self.inputs.stock.card_serial.hex().upper()}: its lifecycle was closed "
                    "after the last checkpoint; mark it SPOILED"
                ) from exc
            raise
        return RollbackResult(
            card_serial=self.card_serial,
            deleted_files=tuple(self.deleted),
            desfire_application_deleted=self.app_deleted,
            checkpoint=self.checkpoint((), "wiped"),
        )


def cps4_rollback(
    inputs: Cps4Inputs, checkpoint: Checkpoint, *, rng: Callable[[int], bytes] = secrets.token_bytes
) -> Program:
    """Wipe a half-personalized card back to stock; RollbackImpossible once it is closed."""
    return _Rollback(inputs, checkpoint, rng).run_rollback()
