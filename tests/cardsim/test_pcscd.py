"""Through a real pcscd and vsmartcard-vpcd with pyscard, as the stations will reach a card."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from cardsim import contact, facts, pkcs15
from tests.cardsim.conftest import card_keys
from tests.cardsim.host import TEST_PIN, TEST_PUK, Ev2Host, Scp03Host, personalize, split
from tests.cardsim.pcscd_support import (
    CONTACT_READER,
    CONTACTLESS_READER,
    Simulator,
    connect,
    simulator_running,
    transmitter,
    wait_absent,
    wait_for,
)

pytestmark = pytest.mark.pcscd

CPS4_ATR = bytes.fromhex("3B9B188001001225006480040100009044")


@pytest.fixture
def sim(pcscd: object, tmp_path: Path) -> Iterator[Simulator]:
    with simulator_running(Simulator(tmp_path)) as simulator:
        yield simulator
        if simulator.proc is not None:
            assert simulator.stop() == 0  # a clean SIGTERM exit; reaped in any case


def _serial(sim: Simulator) -> bytes:
    return bytes.fromhex(sim.status()["serial"])


def test_atr_select_and_serial(sim: Simulator) -> None:
    conn = connect(CONTACT_READER)
    assert bytes(conn.getATR()) == CPS4_ATR
    tx = transmitter(conn)
    assert split(tx(bytes.fromhex("00A4080C02D003")))[1] == 0x9000
    assert split(tx(bytes.fromhex("00B000000A"))) == (_serial(sim), 0x9000)
    assert split(tx(bytes.fromhex("01A4040007A000000151000000")))[1] == 0x9000


def test_pin_counters_block_and_puk_unblock(sim: Simulator) -> None:
    tx = transmitter(connect(CONTACT_READER))
    enc, mac, _ = card_keys(_serial(sim))
    personalize(tx, enc, mac, lock=True)
    assert split(tx(bytes.fromhex("0020000104") + TEST_PIN))[1] == 0x9000
    for left in (2, 1, 0):
        assert split(tx(bytes.fromhex("0020000104") + b"0000"))[1] == 0x63C0 | left
    assert split(tx(bytes.fromhex("00200001")))[1] == 0x6983
    assert split(tx(bytes.fromhex("002C00010C") + TEST_PUK + b"9876"))[1] == 0x9000
    assert split(tx(bytes.fromhex("0020000104") + b"9876"))[1] == 0x9000


def test_scp03_opens_and_personalization_is_refused_outside(sim: Simulator) -> None:
    tx = transmitter(connect(CONTACT_READER))
    fcp = bytes.fromhex("621083020100800200108201018C03034000")
    assert split(tx(bytes.fromhex("00E0000012") + fcp))[1] == 0x6982
    enc, mac, _ = card_keys(_serial(sim))
    host = Scp03Host(tx, enc, mac)
    assert host.select_isd() == 0x9000
    assert host.open(0x33) == _serial(sim)
    assert host.send(0x00, 0xE0, 0, 0, fcp, le=None)[1] == 0x9000
    data, sw = host.send(0x80, 0xF2, 0x80, 0x00, bytes.fromhex("4F00"))
    assert sw == 0x9000 and data[-2] == contact.LC_OP_READY


def test_desfire_authentication_and_file_access(sim: Simulator) -> None:
    conn = connect(CONTACTLESS_READER)
    assert bytes(conn.getATR()) == bytes.fromhex("3B8180018080")
    tx = transmitter(conn)
    host = Ev2Host(tx)
    uid = tx(bytes.fromhex("FFCA000000"))[:-2]  # the reader's GET UID
    assert host.authenticate(0, bytes(16)) == 0xAE  # not the factory key: the vendor's
    from demo.scenario import transport_key

    assert host.authenticate(0, transport_key(uid)) == 0
    aid = bytes.fromhex("F0C0A1")
    assert host.mac_cmd(0xCA, aid + bytes([0x0B, 0x82]))[1] == 0
    assert host.cmd(0x5A, aid)[1] == 0
    assert host.authenticate(0, bytes(16)) == 0
    settings = bytes([1, 0x03]) + (0x0000).to_bytes(2, "little") + (32).to_bytes(3, "little")
    assert host.mac_cmd(0xCD, settings)[1] == 0
    header = bytes([1, 0, 0, 0, 5, 0, 0])
    assert host.mac_cmd(0x8D, header, b"hello", full=True)[1] == 0
    assert host.mac_cmd(0xAD, header, resp_full=True) == (b"hello", 0)
    assert host.authenticate(1, bytes([7]) * 16) == 0xAE


def test_persistence_across_a_restart(sim: Simulator) -> None:
    tx = transmitter(connect(CONTACT_READER))
    enc, mac, _ = card_keys(_serial(sim))
    personalize(tx, enc, mac, files={(0x5000,): b"persisted"})
    assert sim.stop() == 0
    assert json.loads(sim.state.read_text())["contact"]["lifecycle"] == contact.LC_OP_READY
    sim.start()
    tx = transmitter(connect(CONTACT_READER))
    assert split(tx(bytes.fromhex("00A4000C025000")))[1] == 0x9000
    assert split(tx(bytes.fromhex("00B0000009"))) == (b"persisted", 0x9000)
    assert split(tx(bytes.fromhex("0020000104") + TEST_PIN))[1] == 0x9000


def test_tear_at_apdu_n(sim: Simulator) -> None:
    from smartcard.Exceptions import CardConnectionException

    tx = transmitter(connect(CONTACT_READER))
    sim.control.call("fault", tear_at=2)
    assert split(tx(bytes.fromhex("00A4000C023F00")))[1] == 0x9000
    with pytest.raises(CardConnectionException):
        tx(bytes.fromhex("00A4080C02D003"))
    assert sim.status()["present"] is False
    wait_absent()
    sim.control.call("insert")
    tx = transmitter(connect(CONTACT_READER))
    assert split(tx(bytes.fromhex("00A4080C02D003")))[1] == 0x9000


def test_removal_insertion_and_a_second_blank_card(sim: Simulator) -> None:
    first = _serial(sim)
    connect(CONTACT_READER)
    sim.control.call("remove")
    wait_for(lambda: not sim.status()["contact_connected"], what="card removal")
    wait_absent()
    sim.control.call("insert", state=str(sim.workdir / "second.json"))
    tx = transmitter(connect(CONTACT_READER))
    tx(bytes.fromhex("00A4080C02D003"))
    second, sw = split(tx(bytes.fromhex("00B000000A")))
    assert sw == 0x9000 and second != first
    sim.control.call("remove")
    wait_absent()
    sim.control.call("insert", state=str(sim.state))
    tx = transmitter(connect(CONTACT_READER))
    tx(bytes.fromhex("00A4080C02D003"))
    assert split(tx(bytes.fromhex("00B000000A"))) == (first, 0x9000)


def test_opensc_sees_the_card_and_lists_certificates(sim: Simulator, tmp_path: Path) -> None:
    assert shutil.which("pkcs15-tool"), "OpenSC is missing: make test installs it (opensc)"
    from cardsim import cps3

    atr = subprocess.run(
        ["opensc-tool", "--reader", "0", "--atr"], capture_output=True, text=True, check=True
    )
    assert atr.stdout.strip().replace(":", "").upper() == CPS4_ATR.hex().upper()
    tx = transmitter(connect(CONTACT_READER))
    enc, mac, _ = card_keys(_serial(sim))
    keys = [pkcs15.KeyEntry("CPS_PRIV_AUT", b"\x01", 1, 0x4001, usage_sign=False)]
    cert = (cps3.FIXTURES / "cps3-auth.crt.der").read_bytes()
    files = {
        (0x2F00,): pkcs15.ef_dir(facts.PKCS15_AID, "CPS4"),
        (pkcs15.PKCS15_DF_FID,): b"DF:" + facts.PKCS15_AID,
        (pkcs15.PKCS15_DF_FID, pkcs15.ODF_FID): pkcs15.odf(),
        (pkcs15.PKCS15_DF_FID, pkcs15.TOKENINFO_FID): pkcs15.token_info("0000012345", "CPS4"),
        (pkcs15.PKCS15_DF_FID, pkcs15.AODF_FID): pkcs15.aodf(1, b"\x01"),
        (pkcs15.PKCS15_DF_FID, pkcs15.PRKDF_FID): pkcs15.prkdf(keys, b"\x01"),
        (pkcs15.PKCS15_DF_FID, pkcs15.CDF_FID): pkcs15.cdf(keys),
        (pkcs15.PKCS15_DF_FID, 0x4001): cert,
    }
    personalize(tx, enc, mac, files=files, lock=True)
    conf = tmp_path / "opensc.conf"
    conf.write_text(
        "app default {\n card_atr 3b:9b:18:80:01:00:12:25:00:64:80:04:01:00:00:90:44 {\n"
        '  driver = "MaskTech"; name = "CPS4 (ISO 7816-15)"; }\n}\n'
    )
    out = subprocess.run(
        ["pkcs15-tool", "--reader", "0", "--list-certificates"],
        capture_output=True,
        text=True,
        env={"OPENSC_CONF": str(conf), "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert "CPS_PRIV_AUT" in out.stdout, out.stdout + out.stderr
