"""Reading PIN mailer PDFs back as a print shop's machines and a holder would: the text objects
with their positions (pypdf), the pages as images (pdftoppm) and their Code 128 (zxing-cpp)."""

from __future__ import annotations

import io
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

PT_PER_MM = 72 / 25.4
PAGE_HEIGHT_MM = 297.0


@dataclass(frozen=True)
class Text:
    """A text object as drawn: its string, font, size and start point in millimetres from the
    sheet's top-left corner (the y of its baseline)."""

    text: str
    font: str
    size: float
    x_mm: float
    y_mm: float

    def width_mm(self) -> float:
        from reportlab.pdfbase.pdfmetrics import stringWidth

        return stringWidth(self.text, self.font.lstrip("/"), self.size) / PT_PER_MM


def texts(pdf: bytes, page: int = 0) -> list[Text]:
    from pypdf import PdfReader

    found: list[Text] = []

    def visit(text, cm, tm, font_dict, font_size):  # type: ignore[no-untyped-def]
        if not text.strip() or font_dict is None:
            return
        # the start point: the text matrix's origin through the current transformation
        x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
        y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
        size = font_size * (tm[3] * cm[3] if tm[3] * cm[3] else 1)
        found.append(
            Text(
                text=text.strip("\n"),
                font=str(font_dict["/BaseFont"]),
                size=size,
                x_mm=x / PT_PER_MM,
                y_mm=PAGE_HEIGHT_MM - y / PT_PER_MM,
            )
        )

    PdfReader(io.BytesIO(pdf)).pages[page].extract_text(visitor_text=visit)
    return found


def codes(pdf: bytes, page: int = 0) -> tuple[str, str]:
    """The PIN and PUK printed in the codes' panel (the two Courier-Bold strings)."""
    digits = [t.text.strip() for t in texts(pdf, page) if t.font == "/Courier-Bold"]
    assert len(digits) == 2, digits
    return digits[0], digits[1]


def page_count(pdf: bytes) -> int:
    from pypdf import PdfReader

    return len(PdfReader(io.BytesIO(pdf)).pages)


def rasterize(
    pdf: bytes, folder: Path, *, dpi: int = 150, crop_mm: tuple[float, ...] = ()
) -> list[Path]:
    """Pages as PNG through poppler's pdftoppm; ``crop_mm`` = (x, y, w, h) from the top-left."""
    pdftoppm = shutil.which("pdftoppm")
    assert pdftoppm, "pdftoppm (poppler-utils) is installed by scripts/ensure-system.sh test"
    source = folder / "in.pdf"
    source.write_bytes(pdf)
    args = [pdftoppm, "-r", str(dpi), "-png", "-gray"]
    if crop_mm:
        x, y, w, h = (round(v / 25.4 * dpi) for v in crop_mm)
        args += ["-x", str(x), "-y", str(y), "-W", str(w), "-H", str(h)]
    subprocess.run([*args, str(source), str(folder / "page")], check=True, timeout=600)
    return sorted(folder.glob("page-*.png"))


def barcodes(image: Path) -> list[str]:
    import zxingcpp
    from PIL import Image

    with Image.open(image) as picture:
        return [r.text for r in zxingcpp.read_barcodes(picture)]
