"""QR images made from the payload the page shows (never from a screenshot)."""
from __future__ import annotations

import io

import segno


def qr_data_url(payload: str, scale: int = 6) -> str:
    """A PNG data URL, as the seed's ``qr_code`` field carries it."""
    return segno.make(payload, error="l", micro=False).png_data_uri(scale=scale, border=4)


def qr_terminal(payload: str) -> str:
    """The QR drawn with block characters, for a terminal."""
    buf = io.StringIO()
    segno.make(payload, error="l", micro=False).terminal(out=buf, compact=True)
    return buf.getvalue()
