"""A private SoftHSM2 token (own token directory through SOFTHSM2_CONF): for the PKCS#11 tests and
benchmarks, never used by a server (production names its own module and token)."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pki.keys.pkcs11 import find_module

PIN_ENV = "PKI_TEST_HSM_PIN"
TOKEN_LABEL = "pki-test"  # noqa: S105 - a token label, not a password


@dataclass(frozen=True)
class SoftHsm:
    module: str
    token_label: str
    pin_env: str


_made: SoftHsm | None = None


def softhsm_token(tmp: Path) -> SoftHsm:
    """Write a softhsm2.conf under ``tmp``, point SOFTHSM2_CONF at it and initialise a token.

    Once a process: the PKCS#11 library reads SOFTHSM2_CONF when it is first initialised, so a
    second token in another directory (a session fixture imported into two conftest files) would
    leave the library on the first one while the PIN variable names the second's."""
    global _made
    if _made is not None:
        return _made
    util = shutil.which("softhsm2-util")
    if util is None:
        raise RuntimeError("softhsm2-util not found: install the Debian package softhsm2")
    tokens = tmp / "tokens"
    tokens.mkdir(parents=True, exist_ok=True)
    conf = tmp / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    os.environ["SOFTHSM2_CONF"] = str(conf)
    pin = secrets.token_hex(8)
    so_pin = secrets.token_hex(8)
    subprocess.run(  # noqa: S603 - softhsm2-util from PATH, arguments ours
        [util, "--init-token", "--free", "--label", TOKEN_LABEL, "--so-pin", so_pin, "--pin", pin],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
    )
    os.environ[PIN_ENV] = pin
    _made = SoftHsm(module=find_module(), token_label=TOKEN_LABEL, pin_env=PIN_ENV)
    return _made


def extra_token(label: str, pin: str) -> None:
    """Another token in the session's token directory (a token this process never logged in)."""
    util = shutil.which("softhsm2-util")
    assert util is not None
    subprocess.run(  # noqa: S603 - softhsm2-util from PATH, arguments ours
        [util, "--init-token", "--free", "--label", label, "--so-pin", "12345678", "--pin", pin],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
    )
