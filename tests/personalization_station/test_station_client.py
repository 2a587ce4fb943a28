"""The station's transport and command line, without a server: URL policy, the TLS client
certificate (an in-memory handshake), the ways to hand over the enrollment code."""

from __future__ import annotations

import datetime as dt
import io
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from personalization_station import cli, credentials
from personalization_station.client import CmsClient, check_cms_url


@pytest.mark.parametrize(
    "url",
    [
        "http://cms.example",
        "http://cms.example:8000/",
        "http://10.0.0.5:8000",
        "http://localhost.example.org",
        "http://[2001:db8::1]:8000",
        "ftp://127.0.0.1",
        "cms.example",
    ],
)
def test_a_cms_url_that_would_carry_the_token_in_clear_is_refused(url):
    with pytest.raises(ValueError, match="https://"):
        CmsClient(url, "token")


def test_the_refusal_names_the_host_and_the_fix():
    with pytest.raises(ValueError) as caught:
        check_cms_url("http://cms.example:8000")
    message = str(caught.value)
    assert "cms.example" in message and "use https://cms.example:8000" in message
    assert "travel in clear" in message


@pytest.mark.parametrize(
    "url",
    [
        "https://cms.example",
        "http://127.0.0.1:8000",
        "http://127.10.20.30",
        "http://[::1]:8000",
        "http://localhost:8000",
        "http://LOCALHOST",
    ],
)
def test_https_anywhere_and_http_on_loopback_are_accepted(url):
    assert CmsClient(url).base.endswith("/api/v1/")


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[str, ec.EllipticCurvePrivateKey] | None = None,
    *,
    server: bool = False,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    issuer_name, issuer_key = issuer if issuer else (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
    )
    if issuer is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
    else:
        builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), False)
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("cms.test")]), False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(obj: x509.Certificate | ec.EllipticCurvePrivateKey) -> bytes:
    if isinstance(obj, x509.Certificate):
        return obj.public_bytes(serialization.Encoding.PEM)
    return obj.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _handshake(client: ssl.SSLContext, server: ssl.SSLContext) -> ssl.SSLObject:
    """A TLS handshake between two in-memory ends; returns the server's end."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    c = client.wrap_bio(c_in, c_out, server_hostname="cms.test")
    s = server.wrap_bio(s_in, s_out, server_side=True)
    done = {"c": False, "s": False}
    for _ in range(20):
        for name, end in (("c", c), ("s", s)):
            if not done[name]:
                try:
                    end.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            return s
    raise AssertionError("the handshake did not finish")


def test_the_enrolled_client_certificate_is_presented_in_the_tls_handshake(tmp_path: Path):
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("test CA", ca_key)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = _certificate("cms.test", server_key, ("test CA", ca_key), server=True)
    station_key = ec.generate_private_key(ec.SECP256R1())
    station_cert = _certificate("site-bench-1", station_key, ("test CA", ca_key))
    (tmp_path / "ca.pem").write_bytes(_pem(ca))
    (tmp_path / "server.pem").write_bytes(_pem(server_cert) + _pem(server_key))
    key_file = tmp_path / "station-key.pem"
    key_file.write_bytes(_pem(station_key))
    credential = credentials.Credential(
        cms="https://cms.test",
        station_id="s1",
        token="t",
        certificate_pem=_pem(station_cert).decode(),
        key_path=str(key_file),
    )

    client = CmsClient(
        credential.cms,
        credential.token,
        ca_file=str(tmp_path / "ca.pem"),
        client_cert=credentials.client_certificate(credential),
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(str(tmp_path / "server.pem"))
    server.load_verify_locations(str(tmp_path / "ca.pem"))
    server.verify_mode = ssl.CERT_REQUIRED
    assert client.tls is not None
    end = _handshake(client.tls, server)
    peer = x509.load_der_x509_certificate(end.getpeercert(binary_form=True) or b"")
    assert peer.serial_number == station_cert.serial_number
    assert (tmp_path / "station-cert.pem").stat().st_mode & 0o077 == 0

    without = CmsClient("https://cms.test", "t", ca_file=str(tmp_path / "ca.pem"))
    assert without.tls is not None
    with pytest.raises(ssl.SSLError):
        _handshake(without.tls, server)  # a proxy that requires a certificate gets none


def test_no_certificate_means_no_client_certificate():
    credential = credentials.Credential(cms="https://cms.test", station_id="s1", token="t")
    assert credentials.client_certificate(credential) is None


def test_the_enrollment_code_comes_from_the_option_stdin_or_the_environment(monkeypatch):
    monkeypatch.delenv(cli.CODE_ENV, raising=False)
    assert cli._enrollment_code("ABCDE-12345") == "ABCDE-12345"
    monkeypatch.setattr("sys.stdin", io.StringIO("FGHJK-67890\n"))
    assert cli._enrollment_code("-") == "FGHJK-67890"
    monkeypatch.setenv(cli.CODE_ENV, " MNPQR-11111 ")
    assert cli._enrollment_code(None) == "MNPQR-11111"
    monkeypatch.delenv(cli.CODE_ENV)
    with pytest.raises(ValueError, match=cli.CODE_ENV):
        cli._enrollment_code(None)


def test_enroll_without_a_code_or_over_clear_http_stops_before_any_call(
    monkeypatch, tmp_path, capsys
):
    monkeypatch.delenv(cli.CODE_ENV, raising=False)
    credential = str(tmp_path / "credential.json")
    status = cli.main(["--credential", credential, "enroll", "--cms", "https://cms.test"])
    assert status == 2 and "CMS_ENROLLMENT_CODE" in capsys.readouterr().out
    monkeypatch.setenv(cli.CODE_ENV, "ABCDE-12345")
    status = cli.main(["--credential", credential, "enroll", "--cms", "http://cms.test"])
    out = capsys.readouterr().out
    assert status == 2 and "travel in clear" in out and "ABCDE" not in out
    assert not (tmp_path / "credential.json").exists()
