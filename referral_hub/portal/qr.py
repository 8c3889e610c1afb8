"""QR codes drawn on the server as inline SVG: no script, no network, no other origin."""

from __future__ import annotations

import segno
from markupsafe import Markup, escape


def qr_svg(data: str, title: str, *, scale: int = 6) -> Markup:
    """An `<svg>` element encoding `data`, black on white with the standard quiet zone.

    `title` names the image for screen readers (segno escapes it).
    """
    code = segno.make(data, error="m", micro=False)
    svg = code.svg_inline(
        scale=scale, border=4, dark="#000", light="#fff", title=title, svgclass="qr"
    )
    # The title element alone is not announced everywhere; role and label make it an image.
    label = f' role="img" aria-label="{escape(title)}"'
    return Markup(svg.replace("<svg", "<svg" + label, 1))  # noqa: S704 (segno's markup, escaped title)
