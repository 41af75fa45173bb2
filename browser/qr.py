"""QR images made from the payload the page shows (never from a screenshot)."""
from __future__ import annotations

import base64
import io

import segno


def qr_data_url(payload: str, scale: int = 6) -> str:
    """A PNG data URL, as the seed's ``qr_code`` field carries it."""
    return segno.make(payload, error="l", micro=False).png_data_uri(scale=scale, border=4)


def read_qr_data_url(data_url: str) -> str:
    """What a phone's camera reads from a QR data URL: the payload. ValueError if none."""
    import zxingcpp  # only the demo and the tests read QR codes
    from PIL import Image

    prefix = "data:image/png;base64,"
    if not data_url.startswith(prefix):
        raise ValueError("not a PNG data URL")
    image = Image.open(io.BytesIO(base64.b64decode(data_url[len(prefix):])))
    if image.format != "PNG":
        raise ValueError(f"not a PNG image ({image.format})")
    found = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    if not found:
        raise ValueError("the image holds no readable QR code")
    return found[0].text


def qr_terminal(payload: str) -> str:
    """The QR drawn with block characters, for a terminal."""
    buf = io.StringIO()
    segno.make(payload, error="l", micro=False).terminal(out=buf, compact=True)
    return buf.getvalue()
