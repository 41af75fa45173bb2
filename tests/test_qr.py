import pytest

from browser.qr import qr_data_url, qr_terminal, read_qr_data_url

PAYLOAD = "2@abcDEF123+/=,bm9pc2U=,aWRlbnRpdHk=,YWR2"


def test_the_png_holds_the_payload():
    url = qr_data_url(PAYLOAD)
    assert url.startswith("data:image/png;base64,")
    assert read_qr_data_url(url) == PAYLOAD


def test_reading_refuses_what_is_not_a_png_qr():
    with pytest.raises(ValueError):
        read_qr_data_url("data:image/jpeg;base64,AAAA")
    with pytest.raises(ValueError):
        read_qr_data_url("")


def test_terminal_drawing_has_blocks():
    drawn = qr_terminal(PAYLOAD)
    assert "█" in drawn and len(drawn.splitlines()) > 10
