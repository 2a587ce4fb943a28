"""Random bytes at both chips: always a well-formed status word, never an exception."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cardsim.card import Card

CARD = Card.blank("cps4")
CPS3 = Card.blank("cps3")


def _status_ok(resp: bytes) -> bool:
    return len(resp) >= 2 and resp[-2] in (
        0x61,
        0x62,
        0x63,
        0x65,
        0x67,
        0x68,
        0x69,
        0x6A,
        0x6B,
        0x6C,
        0x6D,
        0x6E,
        0x6F,
        0x90,
        0x91,
    )


apdus = st.one_of(
    st.binary(max_size=300),
    st.tuples(
        st.sampled_from([0x00, 0x01, 0x04, 0x0C, 0x10, 0x80, 0x81, 0x84, 0x90, 0xFF]),
        st.integers(0, 255),
        st.binary(min_size=2, max_size=2),
        st.binary(max_size=260),
    ).map(
        lambda t: bytes([t[0], t[1]]) + t[2] + (bytes([len(t[3]) % 256]) + t[3] if t[3] else b"")
    ),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(apdus, min_size=1, max_size=8))
def test_random_apdus_never_crash_the_chips(sequence: list[bytes]) -> None:
    assert CARD.contactless is not None
    for raw in sequence:
        assert _status_ok(CARD.transmit(raw))
        assert _status_ok(CARD.contactless.transmit(raw))
        assert _status_ok(CPS3.transmit(raw))
