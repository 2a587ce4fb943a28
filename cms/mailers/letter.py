"""The PIN mailer letter: one A4 page for a DL or C5/6 window envelope, pure rendering.

The sheet is folded in three (Z fold, panels of 99 mm): the top panel faces the envelope's
window and carries the letterhead, the recipient's address inside the window rectangle (with
the sender's return line above it), the date, the reference and its Code 128. The PIN and PUK
sit in a panel on the middle third, which the Z fold keeps between the two others: nothing of it
shows through the window. Instructions fill the bottom third, French first, English below (the
order is the letter's ``languages``).

No Django here: callers hand plain data (``Letter``, ``Letterhead``, ``Window``) and get PDF bytes.
The Code 128 carries the mailer's reference, never a code.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reportlab.graphics.barcode.code128 import Code128  # type: ignore[import-untyped]
from reportlab.lib.colors import Color, black, white  # type: ignore[import-untyped]
from reportlab.lib.pagesizes import A4  # type: ignore[import-untyped]
from reportlab.lib.units import mm  # type: ignore[import-untyped]
from reportlab.pdfbase.pdfmetrics import stringWidth  # type: ignore[import-untyped]
from reportlab.pdfgen.canvas import Canvas  # type: ignore[import-untyped]

from cms.mailers.wording import (
    BODY,
    COUNTRY_NAMES,
    HOWTO,
    LANGUAGES,
    SUBJECT,
    WORDS,
    LetterKind,
    date_text,
)

PAGE_WIDTH_MM = 210.0
PAGE_HEIGHT_MM = 297.0
FOLD_MM = 99.0  # A4 in three: the top panel is the window face, the middle one holds the codes
MARGIN_MM = 20.0
ADDRESS_INSET_MM = 5.0  # the sheet moves a few millimetres in the envelope
ADDRESS_FONT = ("Helvetica", 10.0)
INK = Color(0.08, 0.16, 0.32)
MUTED = Color(0.35, 0.35, 0.40)
PANEL_TINT = Color(0.93, 0.95, 0.98)


@dataclass(frozen=True, slots=True)
class Window:
    """The envelope window as it lies on the flat sheet, in millimetres from its top-left corner."""

    left_mm: float
    top_mm: float
    width_mm: float
    height_mm: float

    @classmethod
    def from_right(
        cls, *, right_mm: float, top_mm: float, width_mm: float, height_mm: float
    ) -> Window:
        """A window given as envelope makers give it: its distance from the right edge."""
        return cls(PAGE_WIDTH_MM - right_mm - width_mm, top_mm, width_mm, height_mm)

    @property
    def right_mm(self) -> float:
        return self.left_mm + self.width_mm

    @property
    def bottom_mm(self) -> float:
        return self.top_mm + self.height_mm

    def contains(self, x_mm: float, y_mm: float) -> bool:
        """Whether a point (millimetres from the sheet's top-left corner) shows through."""
        return self.left_mm <= x_mm <= self.right_mm and self.top_mm <= y_mm <= self.bottom_mm

    def check(self) -> None:
        """Refuse a window that leaves the sheet or reaches the codes' panel (below the fold)."""
        if self.width_mm <= 2 * ADDRESS_INSET_MM or self.height_mm <= 2 * ADDRESS_INSET_MM:
            raise ValueError("the envelope window is too small to hold an address")
        if self.left_mm < 0 or self.right_mm > PAGE_WIDTH_MM or self.top_mm < 0:
            raise ValueError("the envelope window lies outside the A4 sheet")
        if self.bottom_mm > FOLD_MM:
            raise ValueError(f"the envelope window must end above the first fold ({FOLD_MM} mm)")


# The common French DL / C5-6 window: 100 x 45 mm, 20 mm from the right edge, 50 mm from the top.
FRENCH_WINDOW = Window.from_right(right_mm=20, top_mm=50, width_mm=100, height_mm=45)


@dataclass(frozen=True, slots=True)
class Letterhead:
    """The issuing agency, as settings describe it."""

    name: str
    return_address: tuple[str, ...]
    helpdesk_phone: str
    logo_path: str = ""
    place: str = ""  # the town the letter is dated from


@dataclass(frozen=True, slots=True)
class Letter:
    """One holder's letter. ``pin`` and ``puk`` exist here in clear only while rendering."""

    recipient: str
    address: tuple[str, ...]
    card_number: str
    date: dt.date
    reference: str
    pin: str = field(repr=False)
    puk: str = field(repr=False)
    kind: LetterKind = LetterKind.ISSUANCE
    languages: tuple[str, ...] = ("fr", "en")
    sequence: tuple[int, int] | None = None  # (position, count) in a print run
    run_label: str = ""


# --- drawing -----------------------------------------------------------------------------------


def _y(top_mm: float) -> float:
    """Millimetres from the top of the sheet to reportlab's points from the bottom."""
    return float((PAGE_HEIGHT_MM - top_mm) * mm)


@functools.lru_cache(maxsize=512)  # the instructions are the same on every letter of a run
def _wrap(text: str, font: str, size: float, width_pt: float) -> tuple[str, ...]:
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}" if current else word
        if current and stringWidth(candidate, font, size) > width_pt:
            lines.append(current)
            current = word
        else:
            current = candidate
    if current:
        lines.append(current)
    return tuple(lines)


def _fit(text: str, font: str, size: float, width_pt: float) -> str:
    """Cut a line that would leave its box (an address line longer than the window)."""
    while text and stringWidth(text, font, size) > width_pt:
        text = text[:-1]
    return text


class _Page:
    """The drawing of one letter on the shared canvas."""

    def __init__(
        self,
        pdf: Canvas,
        letter: Letter,
        letterhead: Letterhead,
        window: Window,
        codes: bool,
    ) -> None:
        self.pdf = pdf
        self.letter = letter
        self.head = letterhead
        self.window = window
        self.codes = codes
        self.first = letter.languages[0]

    def text(
        self, x_mm: float, top_mm: float, text: str, font: str = "Helvetica", size: float = 9
    ) -> None:
        self.pdf.setFont(font, size)
        self.pdf.drawString(x_mm * mm, _y(top_mm), text)

    def paragraph(
        self,
        x_mm: float,
        top_mm: float,
        width_mm: float,
        text: str,
        *,
        font: str = "Helvetica",
        size: float = 8.5,
        leading_mm: float = 3.9,
    ) -> float:
        """Draw wrapped text; returns the top of the next line in millimetres."""
        for line in _wrap(text, font, size, width_mm * mm):
            self.text(x_mm, top_mm, line, font, size)
            top_mm += leading_mm
        return top_mm

    def draw(self) -> None:
        self.pdf.setFillColor(black)
        self.letterhead()
        self.address()
        self.references()
        self.codes_panel()
        self.instructions()
        self.furniture()
        self.pdf.showPage()

    # top panel ---------------------------------------------------------------------------------
    def letterhead(self) -> None:
        pdf, head = self.pdf, self.head
        logo = Path(head.logo_path) if head.logo_path else None
        if logo is not None and logo.is_file():
            pdf.drawImage(
                str(logo),
                MARGIN_MM * mm,
                _y(32),
                width=22 * mm,
                height=22 * mm,
                preserveAspectRatio=True,
                anchor="sw",
                mask="auto",
            )
        else:  # a plain mark, so the letter never goes out without a head
            pdf.setFillColor(INK)
            pdf.roundRect(MARGIN_MM * mm, _y(30), 18 * mm, 18 * mm, 2.5 * mm, stroke=0, fill=1)
            pdf.setFillColor(white)
            pdf.setFont("Helvetica-Bold", 14)
            pdf.drawCentredString((MARGIN_MM + 9) * mm, _y(23.5), "CPS")
        pdf.setFillColor(INK)
        x = MARGIN_MM + 25
        top = 16.0
        for line in _wrap(head.name, "Helvetica-Bold", 11, 95 * mm)[:2]:
            self.text(x, top, line, "Helvetica-Bold", 11)
            top += 4.8
        pdf.setFillColor(MUTED)
        for line in head.return_address:
            self.text(x, top, line, "Helvetica", 8)
            top += 3.6
        words = WORDS[self.first]
        self.text(x, top, f"{words['helpdesk']} : {head.helpdesk_phone}", "Helvetica", 8)
        pdf.setFillColor(black)

    def address(self) -> None:
        window = self.window
        inset = ADDRESS_INSET_MM
        x = window.left_mm + inset
        width_pt = (window.width_mm - 2 * inset) * mm
        # The sender's line for undeliverable mail, above the address, inside the window.
        self.pdf.setFillColor(MUTED)
        back = " · ".join(self.head.return_address)
        top = window.top_mm + inset + 2.0
        self.text(x, top, _fit(back, "Helvetica", 6.5, width_pt), "Helvetica", 6.5)
        self.pdf.setFillColor(black)
        font, size = ADDRESS_FONT
        top += 6.0
        lines = (self.letter.recipient, *self.letter.address)
        room = int((window.bottom_mm - inset - top) // 4.2) + 1
        for line in lines[:room]:
            self.text(x, top, _fit(line, font, size, width_pt), font, size)
            top += 4.2

    def references(self) -> None:
        letter = self.letter
        languages = letter.languages
        place = f"{self.head.place}, " if self.head.place else ""
        top = 50.0
        dates = [
            WORDS[lang]["date"].format(place=place, date=date_text(letter.date, lang))
            for lang in languages
        ]
        self.text(MARGIN_MM, top, dates[0], "Helvetica", 9)
        top += 5
        for label_key, value in (("reference", letter.reference), ("card", letter.card_number)):
            label = " / ".join(WORDS[lang][label_key] for lang in languages)
            self.pdf.setFillColor(MUTED)
            self.text(MARGIN_MM, top, label, "Helvetica", 7.5)
            self.pdf.setFillColor(black)
            self.text(MARGIN_MM, top + 4, value, "Helvetica-Bold", 10)
            top += 10
        if self.codes:
            barcode = Code128(
                letter.reference, barHeight=9 * mm, barWidth=0.3 * mm, humanReadable=False
            )
            barcode.drawOn(self.pdf, MARGIN_MM * mm - barcode.lquiet, _y(top + 10))

    # middle panel: the codes -------------------------------------------------------------------
    def codes_panel(self) -> None:
        letter, pdf = self.letter, self.pdf
        languages = letter.languages
        top = FOLD_MM + 9
        for lang in languages:
            self.text(MARGIN_MM, top, SUBJECT[lang, letter.kind], "Helvetica-Bold", 9.5)
            top += 4.6
        top += 2
        width = PAGE_WIDTH_MM - 2 * MARGIN_MM
        for n, lang in enumerate(languages):
            font = "Helvetica" if n == 0 else "Helvetica-Oblique"
            top = self.paragraph(MARGIN_MM, top, width, WORDS[lang]["greeting"], font=font)
            body = BODY[lang, letter.kind].format(card=letter.card_number)
            top = self.paragraph(MARGIN_MM, top, width, body, font=font) + 1.5

        # The panel itself, tinted, well inside the middle third.
        box_top, box_height = max(top + 2, FOLD_MM + 45), 38.0
        box_left, box_width = MARGIN_MM + 15, PAGE_WIDTH_MM - 2 * MARGIN_MM - 30
        pdf.setFillColor(PANEL_TINT)
        pdf.setStrokeColor(INK)
        pdf.setLineWidth(0.8)
        pdf.roundRect(
            box_left * mm, _y(box_top + box_height), box_width * mm, box_height * mm, 3 * mm,
            stroke=1, fill=1,
        )  # fmt: skip
        pdf.setFillColor(INK)
        title = " / ".join(WORDS[lang]["panel"] for lang in languages)
        pdf.setFont("Helvetica-Bold", 9)
        pdf.drawCentredString((box_left + box_width / 2) * mm, _y(box_top + 6.5), title)
        column = box_width / 2
        for n, (key, value) in enumerate((("pin", letter.pin), ("puk", letter.puk))):
            centre = box_left + column * n + column / 2
            label = " / ".join(WORDS[lang][key] for lang in languages)
            pdf.setFillColor(MUTED)
            pdf.setFont("Helvetica", 8)
            pdf.drawCentredString(centre * mm, _y(box_top + 15), label)
            pdf.setFillColor(black)
            self._spaced(centre, box_top + 27, value)
        pdf.setFillColor(black)

    def _spaced(self, centre_mm: float, top_mm: float, digits: str) -> None:
        """The digits as one text object, spaced so each reads alone."""
        font, size, space = "Courier-Bold", 22.0, 2.2 * mm
        width = stringWidth(digits, font, size) + space * (len(digits) - 1)
        self.pdf.saveState()  # the character spacing must not leak into the next text
        text = self.pdf.beginText(centre_mm * mm - width / 2, _y(top_mm))
        text.setFont(font, size)
        text.setCharSpace(space)
        text.textOut(digits)
        self.pdf.drawText(text)
        self.pdf.restoreState()

    # bottom panel: instructions ----------------------------------------------------------------
    def instructions(self) -> None:
        top = 2 * FOLD_MM + 8
        width = PAGE_WIDTH_MM - 2 * MARGIN_MM - 5
        for n, lang in enumerate(self.letter.languages):
            font = "Helvetica" if n == 0 else "Helvetica-Oblique"
            self.pdf.setFillColor(INK)
            self.text(MARGIN_MM, top, WORDS[lang]["howto"], "Helvetica-Bold", 9)
            self.pdf.setFillColor(black)
            top += 4.8
            for item in HOWTO[lang]:
                self.text(MARGIN_MM + 1, top, "•", font, 8)
                top = self.paragraph(
                    MARGIN_MM + 5,
                    top,
                    width,
                    item.format(phone=self.head.helpdesk_phone),
                    font=font,
                    size=8,
                    leading_mm=3.5,
                )
                top += 0.6
            top += 3

    def furniture(self) -> None:
        """Fold marks for the folding machine and the run's sequence line for the print shop."""
        pdf = self.pdf
        pdf.setStrokeColor(MUTED)
        pdf.setLineWidth(0.3)
        for fold in (FOLD_MM, 2 * FOLD_MM):
            pdf.line(0, _y(fold), 6 * mm, _y(fold))
        if self.letter.sequence is not None:
            n, count = self.letter.sequence
            words = WORDS[self.first]
            line = words["sequence"].format(run=self.letter.run_label, n=n, count=count)
            pdf.setFillColor(MUTED)
            pdf.setFont("Helvetica", 6.5)
            pdf.drawRightString((PAGE_WIDTH_MM - MARGIN_MM) * mm, _y(PAGE_HEIGHT_MM - 8), line)
            pdf.setFillColor(black)


def _check(letter: Letter) -> None:
    unknown = [lang for lang in letter.languages if lang not in LANGUAGES]
    if not letter.languages or unknown:
        raise ValueError(f"letters are written in {sorted(LANGUAGES)}, not {unknown}")


def render(
    letters: Iterable[Letter],
    *,
    letterhead: Letterhead,
    window: Window = FRENCH_WINDOW,
    codes: bool = True,
    title: str = "PIN mailers",
) -> bytes:
    """One PDF, one page per letter, in the order given. ``codes=False`` leaves out the Code 128
    (the benchmark's baseline)."""
    window.check()
    buffer = io.BytesIO()
    pdf = Canvas(buffer, pagesize=A4, invariant=True, pageCompression=1)
    pdf.setTitle(title)
    pdf.setAuthor(letterhead.name)
    count = 0
    for letter in letters:
        _check(letter)
        _Page(pdf, letter, letterhead, window, codes).draw()
        count += 1
    if count == 0:
        raise ValueError("a PDF needs at least one letter")
    pdf.save()
    return buffer.getvalue()


def address_lines(
    *,
    line1: str,
    line2: str,
    postal_code: str,
    city: str,
    country: str,
    home_country: str = "FR",
    country_names: dict[str, str] | None = None,
) -> tuple[str, ...]:
    """The postal lines under the recipient's name (NF Z10-011: town in capitals, the country
    last and in capitals when abroad)."""
    lines: Sequence[str] = [
        line1.strip(),
        line2.strip(),
        f"{postal_code.strip()} {city.strip().upper()}".strip(),
    ]
    if country and country.upper() != home_country.upper():
        names: dict[str, Any] = COUNTRY_NAMES if country_names is None else country_names
        lines = [*lines, str(names.get(country.upper(), country)).upper()]
    return tuple(line for line in lines if line)
