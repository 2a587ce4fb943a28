"""The letter alone (pure rendering, no database): where each text object lands on the sheet, what
shows through the envelope window, what pdftoppm and a barcode reader make of the page."""

from __future__ import annotations

import datetime as dt

import pytest

from cms.mailers.letter import (
    FOLD_MM,
    FRENCH_WINDOW,
    Letter,
    Letterhead,
    Window,
    address_lines,
    render,
)
from cms.mailers.references import MailerReferenceError, reference_format, reference_parse
from cms.mailers.wording import LetterKind
from tests.cms.mailers.pdf import barcodes, codes, page_count, rasterize, texts

HEAD = Letterhead(
    name="Agence des cartes de professionnels de santé",
    return_address=("Service des cartes CPS", "TSA 00000", "75700 PARIS CEDEX 07"),
    helpdesk_phone="01 99 00 12 34",
    place="Paris",
)
PIN, PUK = "4821", "73920541"
CAP_HEIGHT = 0.72  # Helvetica's capitals rise to 0.72 of the font size above the baseline


def letter(**changes) -> Letter:
    values = {
        "recipient": "Claire MARTIN",
        "address": address_lines(
            line1="12 rue de la Roquette",
            line2="Bâtiment B",
            postal_code="75011",
            city="Paris",
            country="FR",
        ),
        "card_number": "80250000010000000042",
        "date": dt.date(2026, 12, 5),
        "reference": reference_format(1234),
        "pin": PIN,
        "puk": PUK,
    }
    values.update(changes)
    return Letter(**values)


def _inside(window: Window, text) -> bool:
    top = text.y_mm - text.size * CAP_HEIGHT * 25.4 / 72
    return window.contains(text.x_mm, text.y_mm) and window.contains(
        text.x_mm + text.width_mm(), top
    )


def _shows(window: Window, text) -> bool:
    """Whether any part of the text's box lies in the window."""
    top = text.y_mm - text.size * 25.4 / 72
    return not (
        text.x_mm > window.right_mm
        or text.x_mm + text.width_mm() < window.left_mm
        or top > window.bottom_mm
        or text.y_mm < window.top_mm
    )


@pytest.mark.parametrize("languages", [("fr", "en"), ("en", "fr")])
@pytest.mark.parametrize(
    "window",
    [FRENCH_WINDOW, Window.from_right(right_mm=15, top_mm=45, width_mm=90, height_mm=40)],
    ids=["french-dl", "custom"],
)
def test_the_address_is_inside_the_window_and_the_codes_below_the_fold(languages, window):
    pdf = render([letter(languages=languages)], letterhead=HEAD, window=window)
    found = texts(pdf)
    by_text = {t.text: t for t in found}

    address = ["Claire MARTIN", "12 rue de la Roquette", "Bâtiment B", "75011 PARIS"]
    for line in address:
        assert _inside(window, by_text[line]), (line, by_text[line], window)
    # The return line sits above the address, inside the window too.
    back = next(t for t in found if t.text.startswith("Service des cartes CPS ·"))
    assert _inside(window, back) and back.y_mm < by_text["Claire MARTIN"].y_mm

    # PIN and PUK: in the middle third, which the Z fold hides, and nowhere near the window.
    pin, puk = by_text[PIN], by_text[PUK]
    for code in (pin, puk):
        assert code.y_mm - code.size * 25.4 / 72 > FOLD_MM and code.y_mm < 2 * FOLD_MM
        assert not _shows(window, code)
    # Nothing of the top third carries a code; nothing but the address shows in the window.
    top_third = " ".join(t.text for t in found if t.y_mm < FOLD_MM)
    assert PIN not in top_third and PUK not in top_third
    in_window = {t.text for t in found if _shows(window, t)}
    assert in_window == {*address, back.text}


@pytest.mark.parametrize(
    ("languages", "first", "second"),
    [
        (("fr", "en"), "Objet : les codes confidentiels", "Subject: the confidential codes"),
        (("en", "fr"), "Subject: the confidential codes", "Objet : les codes confidentiels"),
    ],
)
def test_the_first_language_comes_first(languages, first, second):
    found = texts(render([letter(languages=languages)], letterhead=HEAD))
    y = {key: next(t.y_mm for t in found if t.text.startswith(key)) for key in (first, second)}
    assert y[first] < y[second]
    french = next(t.y_mm for t in found if "(4 chiffres)" in t.text)
    english = next(t.y_mm for t in found if "(4 digits)" in t.text)
    assert (french < english) == (languages[0] == "fr")


def test_the_letter_says_what_the_codes_are_for_and_who_to_call():
    text = " ".join(t.text for t in texts(render([letter()], letterhead=HEAD)))
    for needed in (
        "3 codes PIN erronés",
        "After 3 wrong PIN codes",
        "01 99 00 12 34",
        "Ne gardez jamais cette lettre avec votre carte",
        "Never keep this letter with your card",
        "Carte perdue ou volée",
        "Card lost or stolen",
        "80250000010000000042",
        "Paris, le 5 décembre 2026",
    ):
        assert needed in text, needed


@pytest.mark.parametrize(
    ("kind", "french", "english"),
    [
        (LetterKind.ISSUANCE, "vous est adressée par un envoi", "is sent to you separately"),
        (LetterKind.NEW_CODES, "de nouveaux codes confidentiels", "new confidential codes"),
        (LetterKind.RENEWAL, "arrive à échéance", "about to expire"),
    ],
)
def test_each_kind_of_letter_has_its_wording(kind, french, english):
    text = " ".join(t.text for t in texts(render([letter(kind=kind)], letterhead=HEAD)))
    assert french in text and english in text
    assert codes(render([letter(kind=kind)], letterhead=HEAD)) == (PIN, PUK)


def test_the_page_renders_with_pdftoppm_and_its_code_carries_the_reference(tmp_path):
    pdf = render([letter()], letterhead=HEAD)
    (image,) = rasterize(pdf, tmp_path, dpi=150)
    assert image.stat().st_size > 10_000  # a page with ink on it, not a blank
    found = barcodes(image)
    assert found == [reference_format(1234)]
    assert PIN not in found[0] and PUK not in found[0]


def test_without_codes_the_page_has_no_barcode(tmp_path):
    (image,) = rasterize(render([letter()], letterhead=HEAD, codes=False), tmp_path, dpi=150)
    assert barcodes(image) == []


def test_a_logo_file_goes_into_the_letterhead(tmp_path):
    from PIL import Image

    logo = tmp_path / "logo.png"
    Image.new("RGB", (120, 120), (20, 40, 90)).save(logo)
    head = Letterhead(
        name=HEAD.name,
        return_address=HEAD.return_address,
        helpdesk_phone=HEAD.helpdesk_phone,
        logo_path=str(logo),
    )
    with_logo = render([letter()], letterhead=head)
    assert b"/Subtype /Image" in with_logo
    assert b"/Subtype /Image" not in render([letter()], letterhead=HEAD)


def test_many_letters_make_one_pdf_in_order():
    letters = [letter(reference=reference_format(n), pin=f"{n:04d}") for n in range(1, 6)]
    pdf = render(letters, letterhead=HEAD)
    assert page_count(pdf) == 5
    assert [codes(pdf, page)[0] for page in range(5)] == [f"{n:04d}" for n in range(1, 6)]


@pytest.mark.parametrize(
    "window",
    [
        Window.from_right(right_mm=20, top_mm=60, width_mm=100, height_mm=45),  # reaches the fold
        Window(left_mm=150, top_mm=50, width_mm=100, height_mm=45),  # off the sheet
        Window(left_mm=90, top_mm=50, width_mm=8, height_mm=45),  # too small for an address
    ],
)
def test_a_window_that_would_show_the_codes_or_leave_the_sheet_is_refused(window):
    with pytest.raises(ValueError):
        render([letter()], letterhead=HEAD, window=window)


def test_an_unknown_language_or_no_letter_is_refused():
    with pytest.raises(ValueError):
        render([letter(languages=("de",))], letterhead=HEAD)
    with pytest.raises(ValueError):
        render([], letterhead=HEAD)


def test_an_overlong_address_line_is_cut_to_the_window():
    long = "Résidence des Professions de Santé, escalier C, porte 12, " * 2
    pdf = render([letter(address=(long, "75011 PARIS"))], letterhead=HEAD)
    line = next(t for t in texts(pdf) if t.text.startswith("Résidence"))
    assert _inside(FRENCH_WINDOW, line)


def test_address_lines_follow_the_postal_norm():
    assert address_lines(
        line1="3 rue Haute", line2="", postal_code="1000", city="Bruxelles", country="be"
    ) == ("3 rue Haute", "1000 BRUXELLES", "BELGIQUE")
    assert address_lines(
        line1="", line2="BP 12", postal_code="97200", city="Fort-de-France", country="FR"
    ) == ("BP 12", "97200 FORT-DE-FRANCE")


def test_references_are_checked_as_typed():
    reference = reference_format(1234)
    assert reference == "PM-00001234-" + reference[-1]
    for typed in (reference, reference.lower(), reference.replace("-", ""), f" {reference} "):
        assert reference_parse(typed) == reference
    wrong_digit = reference[:-1] + str((int(reference[-1]) + 1) % 10)
    swapped = reference[:-3] + reference[-2] + reference[-3] + reference[-1]
    for typo in (wrong_digit, "PM-1234", "XX-00001234-0", ""):
        with pytest.raises(MailerReferenceError):
            reference_parse(typo)
    if swapped != reference:
        with pytest.raises(MailerReferenceError):
            reference_parse(swapped)
    with pytest.raises(ValueError):
        reference_format(10**8)
