"""The virtual CPS3 judged by OpenSC's own IAS-ECC driver for real CPx cards (issue 19).

No ``opensc.conf`` mapping: OpenSC recognises the card from its ATR, reads EF.ATR, selects the IAS
root, binds the PKCS#15 application and reaches the keys through IAS-ECC GET DATA of their SDOs,
as it does with a real CPS3 (docs/cardsim.md, "CPS3 facts").
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from cardsim import cps3
from tests.cardsim.pcscd_support import Simulator, simulator_running

pytestmark = pytest.mark.pcscd

AUTH_ID = (cps3.APPLICATION.aid + bytes([cps3.AUTH_SLOT.pkcs15_id])).hex()
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
MODULES = (
    "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so",
    "/usr/lib/opensc-pkcs11.so",
    "/usr/lib/x86_64-linux-gnu/pkcs11/opensc-pkcs11.so",
)


@pytest.fixture
def cps3_sim(pcscd: object, tmp_path: Path) -> Iterator[Simulator]:
    with simulator_running(Simulator(tmp_path, product="cps3")) as simulator:
        yield simulator


def _run(*args: str, cwd: Path, debug: bool = False) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "OPENSC_CONF"}  # the system default
    if debug:
        env["OPENSC_DEBUG"] = "3"
    return subprocess.run(
        list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_opensc_names_lists_and_signs_with_the_virtual_cps3(
    cps3_sim: Simulator, tmp_path: Path
) -> None:
    assert shutil.which("opensc-tool"), "OpenSC is missing: make test installs it (opensc)"
    module = next((p for p in MODULES if Path(p).exists()), None)
    assert module is not None, "opensc-pkcs11.so is missing"

    named = _run("opensc-tool", "--reader", "0", "--name", cwd=tmp_path, debug=True)
    assert named.returncode == 0, named.stdout + named.stderr
    assert named.stdout.strip() == "IAS-ECC"
    assert "'IAS/ECC CPx' card matched" in named.stderr
    assert "EF.ATR: AID '8025000001FF0100'" in named.stderr

    listed = _run("pkcs15-tool", "--reader", "0", "--list-certificates", cwd=tmp_path)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert listed.stdout.count("X.509 Certificate") == 2, listed.stdout
    assert "3f0000014001" in listed.stdout and "3f0000014002" in listed.stdout

    read = _run(
        "pkcs11-tool", "--module", module, "--slot-index", "0", "--read-object", "--type", "cert",
        "--id", AUTH_ID, "--output-file", "auth.der", cwd=tmp_path,
    )  # fmt: skip
    assert read.returncode == 0, read.stdout + read.stderr
    certificate = x509.load_der_x509_certificate((tmp_path / "auth.der").read_bytes())
    assert certificate.fingerprint(hashes.SHA256()) == x509.load_der_x509_certificate(
        (cps3.FIXTURES / "cps3-auth.crt.der").read_bytes()
    ).fingerprint(hashes.SHA256())

    # OpenSC 0.23 built on OpenSSL 3 cannot hash partially for the card (its IAS-ECC PSO HASH),
    # so the relying party signs a DigestInfo with RSA-PKCS: INTERNAL AUTHENTICATE on the card.
    message = b"migration CPS3 -> CPS4"
    (tmp_path / "digest-info.bin").write_bytes(
        SHA256_DIGEST_INFO + hashlib.sha256(message).digest()
    )
    pin = cps3.holder()["test_pin"]
    signed = _run(
        "pkcs11-tool", "--module", module, "--slot-index", "0", "--login", "--pin", pin,
        "--sign", "-m", "RSA-PKCS", "--id", AUTH_ID, "--input-file", "digest-info.bin",
        "--output-file", "sig.bin", cwd=tmp_path,
    )  # fmt: skip
    assert signed.returncode == 0, signed.stdout + signed.stderr
    public = certificate.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    (tmp_path / "message.bin").write_bytes(message)
    (tmp_path / "auth.pem").write_text(
        subprocess.run(
            ["openssl", "x509", "-inform", "DER", "-in", "auth.der", "-pubkey", "-noout"],
            cwd=tmp_path, capture_output=True, text=True, check=True,
        ).stdout
    )  # fmt: skip
    verified = subprocess.run(
        ["openssl", "dgst", "-sha256", "-verify", "auth.pem", "-signature", "sig.bin",
         "message.bin"],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert verified.returncode == 0 and "Verified OK" in verified.stdout, verified.stderr
    public.verify((tmp_path / "sig.bin").read_bytes(), message, padding.PKCS1v15(), hashes.SHA256())

    # The real CPS3 declares its authentication key for decrypt too: OpenSSL encrypts to the
    # certificate key, the card deciphers (MSE CT, chained PSO DECIPHER).
    subprocess.run(
        ["openssl", "pkeyutl", "-encrypt", "-pubin", "-inkey", "auth.pem", "-in", "message.bin",
         "-out", "cipher.bin"],
        cwd=tmp_path, check=True, capture_output=True,
    )  # fmt: skip
    decrypted = _run(
        "pkcs11-tool", "--module", module, "--slot-index", "0", "--login", "--pin", pin,
        "--decrypt", "-m", "RSA-PKCS", "--id", AUTH_ID, "--input-file", "cipher.bin",
        "--output-file", "plain.bin", cwd=tmp_path,
    )  # fmt: skip
    assert decrypted.returncode == 0, decrypted.stdout + decrypted.stderr
    assert (tmp_path / "plain.bin").read_bytes() == message
