"""The card lifecycle drawn as inline SVG, generated from the lifecycle table (``cms.lifecycle``):
one box per state, one arrow per (source, transition, target), the current state marked by a
filled box and the words "current state" (never by colour alone)."""

from __future__ import annotations

import math
from xml.sax.saxutils import escape

from django.utils.translation import gettext as _

from cms import lifecycle
from cms.choices import CardStatus

BOX_W, BOX_H = 118, 32
COL, ROW, MARGIN = 150, 90, 20

# Where each state sits (column, row): issuance left to right, endings below.
POSITIONS: dict[CardStatus, tuple[int, int]] = {
    CardStatus.IN_STOCK: (0, 0),
    CardStatus.ALLOCATED: (1, 0),
    CardStatus.PERSONALIZING: (2, 0),
    CardStatus.ISSUED: (3, 0),
    CardStatus.ACTIVE: (4, 0),
    CardStatus.SPOILED: (2, 1),
    CardStatus.SUSPENDED: (4, 1),
    CardStatus.DESTROYED: (2, 2),
    CardStatus.REVOKED: (3, 2),
    CardStatus.EXPIRED: (4, 2),
}


def _centre(state: CardStatus) -> tuple[float, float]:
    col, row = POSITIONS[state]
    return MARGIN + col * COL + BOX_W / 2, MARGIN + 14 + row * ROW + BOX_H / 2


def _edge_point(centre: tuple[float, float], toward: tuple[float, float]) -> tuple[float, float]:
    """Where the line from a box's centre toward a point leaves the box."""
    dx, dy = toward[0] - centre[0], toward[1] - centre[1]
    if dx == 0 and dy == 0:
        return centre
    scale = min(
        (BOX_W / 2) / abs(dx) if dx else math.inf, (BOX_H / 2) / abs(dy) if dy else math.inf
    )
    return centre[0] + dx * scale, centre[1] + dy * scale


def lifecycle_svg(current: str | None = None) -> str:
    width = MARGIN * 2 + 4 * COL + BOX_W
    here = escape(_("current state"))
    height = MARGIN * 2 + 14 + 2 * ROW + BOX_H + 10
    parts = [
        f'<svg class="lifecycle" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-labelledby="lc-title">',
        '<title id="lc-title">'
        + escape(
            _("Card lifecycle: current state %(state)s") % {"state": current}
            if current
            else _("Card lifecycle")
        )
        + "</title>",
        '<defs><marker id="lc-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#5b6575"/></marker></defs>',
    ]
    for transition in lifecycle.TRANSITIONS:
        for source in sorted(transition.sources):
            a, b = _centre(source), _centre(transition.target)
            dist = math.hypot(b[0] - a[0], b[1] - a[1])
            nx, ny = -(b[1] - a[1]) / dist, (b[0] - a[0]) / dist
            bulge = 0.22 * dist
            control = ((a[0] + b[0]) / 2 + nx * bulge, (a[1] + b[1]) / 2 + ny * bulge)
            start, end = _edge_point(a, control), _edge_point(b, control)
            label_x = 0.25 * start[0] + 0.5 * control[0] + 0.25 * end[0]
            label_y = 0.25 * start[1] + 0.5 * control[1] + 0.25 * end[1]
            parts.append(
                f"<g><title>{escape(transition.name)}: {escape(source)} → "
                f"{escape(transition.target)}</title>"
                f'<path d="M{start[0]:.1f},{start[1]:.1f} Q{control[0]:.1f},{control[1]:.1f} '
                f'{end[0]:.1f},{end[1]:.1f}" fill="none" stroke="#5b6575" '
                f'marker-end="url(#lc-arrow)"/>'
                f'<text x="{label_x:.1f}" y="{label_y:.1f}" text-anchor="middle" '
                f'fill="#1d2430">{escape(transition.name)}</text></g>'
            )
    for state in CardStatus:
        cx, cy = _centre(state)
        is_current = state.value == current
        fill, ink, stroke = ("#0b5cad", "#ffffff", 3) if is_current else ("#ffffff", "#1d2430", 1)
        marker = ' aria-current="true"' if is_current else ""
        parts.append(
            f"<g{marker}>"
            f'<rect x="{cx - BOX_W / 2:.1f}" y="{cy - BOX_H / 2:.1f}" width="{BOX_W}" '
            f'height="{BOX_H}" rx="6" fill="{fill}" stroke="#0b5cad" stroke-width="{stroke}"/>'
            f'<text x="{cx:.1f}" y="{cy + 4:.1f}" text-anchor="middle" fill="{ink}">'
            f"{escape(state.value)}</text>"
            + (
                f'<text x="{cx:.1f}" y="{cy - BOX_H / 2 - 5:.1f}" text-anchor="middle" '
                f'fill="#0b5cad" font-weight="600">{here}</text>'
                if is_current
                else ""
            )
            + "</g>"
        )
    parts.append("</svg>")
    return "".join(parts)
