"""The station's command line.

``python -m personalization_station enroll --cms URL --code CODE [--certificate]`` exchanges a
one-time enrollment code for the station credential (stored mode 0600); ``--code -`` reads the
code from stdin and, without ``--code``, it is taken from ``CMS_ENROLLMENT_CODE``: both keep it
out of ``ps`` listings and shell history;
``python -m personalization_station run [--cms URL] [--reader NAME] [--once]`` waits for cards and
relays their personalization sessions;
``python -m personalization_station handin --cps4 NUMBER [--reader NAME]`` reads the CPS3 a holder
hands in with their new CPS4 and reports it (the CMS matches it or refuses the hand-over);
``python -m personalization_station puk-unblock [--reader NAME]`` lets the holder type PUK and new
PIN (on the station only), unblocks the PIN and reports the outcome and the PUK tries left;
``python -m personalization_station pin-status [--reader NAME]`` reports the try counters;
``python -m personalization_station renew [--reader NAME]`` renews the certificates of the inserted
card when it is invited (the holder types the unchanged PIN here; it goes to the card only).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from cards.errors import CardError
from personalization_station import credentials
from personalization_station.client import ApiError, Backoff, CmsClient
from personalization_station.relay import Outcome, RelayError, personalize, renew

log = logging.getLogger("personalization_station")

CODE_ENV = "CMS_ENROLLMENT_CODE"


def _say(line: str) -> None:
    print(line, flush=True)  # noqa: T201 - the station's progress output


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m personalization_station")
    parser.add_argument(
        "--credential",
        type=Path,
        default=None,
        help="credential file (default: $XDG_CONFIG_HOME/cps-station/credential.json)",
    )
    parser.add_argument("--ca-file", help="CA bundle that signs the CMS's TLS certificate")
    parser.add_argument("-v", "--verbose", action="store_true", help="log APDU headers")
    sub = parser.add_subparsers(dest="command", required=True)
    enroll = sub.add_parser("enroll", help="exchange a one-time code for the station credential")
    enroll.add_argument(
        "--cms", required=True, help="base URL of the CMS, e.g. https://cms.example"
    )
    enroll.add_argument(
        "--code",
        help=(
            "the one-time enrollment code; '-' reads it from stdin, and without --code it is "
            f"taken from ${CODE_ENV} (both keep it out of ps and the shell history)"
        ),
    )
    enroll.add_argument(
        "--certificate",
        action="store_true",
        help="also obtain a client certificate (a key pair and CSR are made here)",
    )
    run = sub.add_parser("run", help="wait for cards and personalize them")
    run.add_argument("--cms", help="base URL of the CMS (default: the enrolled one)")
    run.add_argument("--reader", help="contact reader name (default: the first reader)")
    run.add_argument("--once", action="store_true", help="stop after one card's session")
    run.add_argument(
        "--retry-seconds",
        type=float,
        default=300.0,
        help="how long to ride out an unreachable CMS before giving up on a call",
    )
    handin = sub.add_parser(
        "handin", help="read the CPS3 a holder hands in with their new CPS4 and report it"
    )
    handin.add_argument("--cms", help="base URL of the CMS (default: the enrolled one)")
    handin.add_argument("--reader", help="contact reader name (default: the first reader)")
    handin.add_argument("--cps4", required=True, help="the card number of the CPS4 delivered")
    for name, text in (
        ("puk-unblock", "the holder unblocks the PIN with the PUK (codes stay on the station)"),
        ("pin-status", "read and report the PIN and PUK tries left (no try consumed)"),
    ):
        act = sub.add_parser(name, help=text)
        act.add_argument("--cms", help="base URL of the CMS (default: the enrolled one)")
        act.add_argument("--reader", help="contact reader name (default: the first reader)")
    act = sub.add_parser(
        "renew", help="renew the certificates of the inserted card (its holder types the PIN)"
    )
    act.add_argument("--cms", help="base URL of the CMS (default: the enrolled one)")
    act.add_argument("--reader", help="contact reader name (default: the first reader)")
    return parser


def _secret_line(prompt: str) -> str:
    import getpass

    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    _say(prompt.rstrip())
    return sys.stdin.readline().strip()


def _enrolled_client(
    args: argparse.Namespace, credential: credentials.Credential, retry_seconds: float | None = None
) -> CmsClient | None:
    """The enrolled station's client (its token and client certificate), or None when the CMS
    URL or the TLS settings are refused (said on the output)."""
    try:
        return CmsClient(
            args.cms or credential.cms,
            credential.token,
            ca_file=args.ca_file,
            client_cert=credentials.client_certificate(credential),
            backoff=Backoff(total=retry_seconds) if retry_seconds is not None else None,
        )
    except ValueError as exc:
        _say(f"not started: {exc}")
        return None


def _reader_name(args: argparse.Namespace) -> str | None:
    """``--reader`` or the first reader pcscd knows (None said on the output)."""
    from personalization_station import pcsc

    names = pcsc.reader_names()
    reader = args.reader or (names[0] if names else None)
    if reader is None:
        _say("no PC/SC reader; is pcscd running?")
    return reader


def _codes_act(args: argparse.Namespace, path: Path) -> int:
    from cards.iso7816 import IsoCard
    from personalization_station import codes, pcsc

    client = _enrolled_client(args, credentials.load(path))
    reader = _reader_name(args) if client is not None else None
    if client is None or reader is None:
        return 2
    transport = pcsc.PcscTransport(reader)
    try:
        transport.connect()
        card = IsoCard(transport)
        if args.command == "pin-status":
            body = codes.pin_status_report(client, card)
            pin_left, puk_left = body["pin_tries_left"], body["puk_tries_left"]
            _say(f"PIN tries left: {pin_left}; PUK tries left: {puk_left}")
            return 0
        puk = _secret_line("PUK: ")
        new_pin = _secret_line("New PIN: ")
        if _secret_line("New PIN again: ") != new_pin:
            _say("the two PINs differ; nothing was sent to the card")
            return 1
        try:
            outcome = codes.puk_unblock(card, puk, new_pin)
        except ValueError as exc:
            _say(f"{exc}; nothing was sent to the card")
            return 1
        codes.puk_unblock_report(client, card, outcome)
        _say(f"{outcome.outcome.replace('_', ' ')}; PUK tries left: {outcome.puk_tries_left}")
        return 0 if outcome.outcome == "unblocked" else 1
    except ApiError as exc:
        _say(f"the CMS refused the report: {exc.message}")
        return 3
    except CardError as exc:
        _say(f"card error: {exc}")
        return 1
    finally:
        transport.close()


def _enrollment_code(option: str | None) -> str:
    """The code from ``--code VALUE``, ``--code -`` (stdin) or ``$CMS_ENROLLMENT_CODE``."""
    if option == "-":
        code = sys.stdin.readline().strip()
    elif option is not None:
        code = option.strip()
    else:
        code = os.environ.get(CODE_ENV, "").strip()
    if not code:
        raise ValueError(
            f"no enrollment code: pass --code - and type it on stdin, or set {CODE_ENV}"
        )
    return code


def _enroll(args: argparse.Namespace, path: Path) -> int:
    try:
        code = _enrollment_code(args.code)
        client = CmsClient(args.cms, ca_file=args.ca_file, backoff=Backoff(total=30.0))
    except ValueError as exc:
        _say(f"enrollment not attempted: {exc}")
        return 2
    body: dict[str, str] = {"code": code}
    key_path: str | None = None
    if args.certificate:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "station")]))
            .sign(key, hashes.SHA256())
        )
        body["csr"] = csr.public_bytes(serialization.Encoding.PEM).decode()
        key_file = path.with_name("station-key.pem")
        key_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
        key_path = str(key_file)
    try:
        _, answer = client.post("stations/enroll", body)
    except ApiError as exc:
        _say(f"enrollment refused: {exc.message}")
        return 2
    station = answer["station"]
    credential = credentials.Credential(
        cms=args.cms,
        station_id=str(station["id"]),
        token=str(answer["token"]),
        certificate_pem=answer.get("certificate"),
        key_path=key_path,
    )
    credentials.save(credential, path)
    credentials.client_certificate(credential)
    _say(
        f"enrolled station {station['site']}/{station['name']} ({station['id']}); "
        f"credential in {path}"
    )
    return 0


def _report(outcome: Outcome) -> None:
    line = (
        f"card {outcome.chip_serial}: {outcome.state} "
        f"({outcome.round_trips} round trips, {outcome.apdus} APDUs)"
    )
    if outcome.message:
        line += f": {outcome.message}"
    _say(line)


def _run(args: argparse.Namespace, path: Path) -> int:
    from personalization_station import pcsc

    credential = credentials.load(path)
    client = _enrolled_client(args, credential, args.retry_seconds)
    reader = _reader_name(args) if client is not None else None
    if client is None or reader is None:
        return 2
    _say(f"station {credential.station_id} on reader {reader!r}; waiting for a card")
    while True:
        link = pcsc.wait_for_card(reader)
        try:
            outcome = personalize(client, link, progress=_say)
        except ApiError as exc:
            outcome = Outcome("refused", message=exc.message)
            if exc.status == 401:
                _say("the CMS refused this station's credential (disabled?)")
                return 3
        except (CardError, RelayError) as exc:
            outcome = Outcome("card_error", message=str(exc))
        finally:
            pcsc.close(link)
        _report(outcome)
        if args.once and outcome.state != "interrupted":
            return 0 if outcome.state == "done" else 1
        _say("remove the card")
        pcsc.wait_for_removal(reader)
        _say("waiting for a card")


def _renew(args: argparse.Namespace, path: Path) -> int:
    """Renew the certificates of the card in the reader if the CMS invited it (or resume its
    interrupted renewal); the holder types the PIN when the card's check needs it."""
    from personalization_station import pcsc

    client = _enrolled_client(args, credentials.load(path), 30.0)
    reader = _reader_name(args) if client is not None else None
    if client is None or reader is None:
        return 2
    link = pcsc.wait_for_card(reader, timeout=60.0)
    try:
        outcome = renew(client, link, pin=lambda: _secret_line("PIN: "), progress=_say)
    except ApiError as exc:
        outcome = Outcome("refused", message=exc.message)
    except (CardError, RelayError) as exc:
        outcome = Outcome("card_error", message=str(exc))
    finally:
        pcsc.close(link)
    _report(outcome)
    if outcome.state == "no_renewal":
        _say("nothing to renew on this card")
        return 0
    return 0 if outcome.state == "done" else 1


def _handin(args: argparse.Namespace, path: Path) -> int:
    """Read the CPS3 in the reader (chip serial, certificates) and report it: the CMS matches it
    to the holder of the CPS4 delivered, or refuses the hand-over with its reason."""
    import base64

    from cards.cps3_read import read_cps3
    from personalization_station import pcsc

    client = _enrolled_client(args, credentials.load(path), 30.0)
    reader = _reader_name(args) if client is not None else None
    if client is None or reader is None:
        return 2
    link = pcsc.wait_for_card(reader, timeout=60.0)
    try:
        contents = read_cps3(link.contact)
    except CardError as exc:
        _say(f"the card in {reader!r} could not be read as a CPS3: {exc}")
        return 1
    finally:
        pcsc.close(link)
    body = {
        "cps4_card_number": args.cps4,
        "chip_serial": contents.chip_serial.hex().upper(),
        "certificates": {
            slot: base64.b64encode(der).decode() for slot, der in contents.certificates.items()
        },
    }
    try:
        _, answer = client.post("station/cps3-handin", body)
    except ApiError as exc:
        _say(f"hand-over refused: {exc.message}")
        return 1
    _say(f"CPS3 {body['chip_serial']}: {answer['message']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    path: Path = args.credential or credentials.default_path()
    if args.command == "enroll":
        return _enroll(args, path)
    if args.command == "handin":
        return _handin(args, path)
    if args.command in ("puk-unblock", "pin-status"):
        return _codes_act(args, path)
    if args.command == "renew":
        return _renew(args, path)
    return _run(args, path)
