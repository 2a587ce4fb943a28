"""OCSP as a relying party asks it, with the `openssl ocsp` command line: POST (openssl's own
client) or GET (RFC 6960 A.1, the request built by openssl, sent as a URL), with or without nonce.
Every answer is verified by openssl against the CA chain, and the nonce: by default (RFC 5019,
ADR 0019) a nonce is not echoed, which openssl accepts with "WARNING: no nonce in response";
with PKI_OCSP_NONCE_SIGNING it is echoed and must match."""

from __future__ import annotations

import base64
import re
import subprocess
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class OcspFiles:
    cert: Path  # PEM of the certificate asked about
    issuer: Path  # PEM of its issuing CA
    chain: Path  # PEM of every CA, for -CAfile


def _openssl(*args: str | Path) -> str:
    result = subprocess.run(
        ["openssl", "ocsp", *map(str, args)], capture_output=True, text=True, timeout=60
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


def ocsp_status(
    base_url: str, files: OcspFiles, *, method: str, nonce: bool, work: Path, echo: bool = False
) -> tuple[str, bytes]:
    """The certificate status openssl read from a verified answer ("good", "revoked"…), and the
    answer's DER."""
    tag = f"{method.lower()}-{'nonce' if nonce else 'no-nonce'}"
    request, answer = work / f"{tag}.req", work / f"{tag}.resp"
    nonce_flag = "-nonce" if nonce else "-no_nonce"
    if method == "POST":
        output = _openssl(
            "-issuer", files.issuer, "-cert", files.cert, "-url", f"{base_url}/ocsp",
            "-CAfile", files.chain, nonce_flag, "-respout", answer,
        )  # fmt: skip
    else:
        _openssl("-issuer", files.issuer, "-cert", files.cert, nonce_flag, "-reqout", request)
        encoded = urllib.parse.quote(base64.b64encode(request.read_bytes()).decode(), safe="")
        with urllib.request.urlopen(f"{base_url}/ocsp/{encoded}", timeout=30) as reply:
            assert reply.status == 200
            assert reply.headers["Content-Type"] == "application/ocsp-response"
            answer.write_bytes(reply.read())
        # -reqin (and no -cert, which would build a new request) checks the nonce against the
        # request sent; -resp_text prints the status.
        output = _openssl(
            "-reqin", request, "-respin", answer, "-CAfile", files.chain, "-resp_text"
        )
    assert "Response verify OK" in output, output
    assert "Nonce Verify error" not in output, output
    if nonce and not echo:
        assert "WARNING: no nonce in response" in output, output
    else:
        assert "WARNING: no nonce" not in output, output
    found = re.search(r"(?:Cert Status|\.pem): (\w+)", output)
    assert found is not None, output
    return found.group(1), answer.read_bytes()
