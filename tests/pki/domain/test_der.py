from __future__ import annotations

import pytest

from pki.domain import der


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, "020100"),
        (2, "020102"),
        (127, "02017f"),
        (128, "02020080"),
        (-1, "0201ff"),
        (256, "02020100"),
    ],
)
def test_integer_is_minimal_twos_complement(value: int, expected: str) -> None:
    assert der.encode_integer(value).hex() == expected


def test_long_form_length() -> None:
    assert der.encode_length(127) == b"\x7f"
    assert der.encode_length(128) == b"\x81\x80"
    assert der.encode_length(300) == b"\x82\x01\x2c"
    assert der.encode_octet_string(b"x" * 200)[:3] == b"\x04\x81\xc8"


def test_printable_string_refuses_outside_alphabet() -> None:
    assert der.encode_printable_string("8025000001/26") == b"\x13\x0d8025000001/26"
    with pytest.raises(ValueError, match="PrintableString"):
        der.encode_printable_string("a@b")
