"""Phone numbers as WhatsApp wants them: E.164 digits without the plus sign."""
from __future__ import annotations

import re

import phonenumbers

INVALID_PHONE = "Invalid phone number format"


class InvalidPhoneNumber(ValueError):
    def __init__(self, raw: str):
        super().__init__(INVALID_PHONE)
        self.raw = raw


def normalize_phone(raw: str, default_region: str = "IN") -> str:
    """Parse an international number; 10 bare digits take the default region (as the seed's sanitizer).

    "919876543210", "+91 98765 43210" and "9876543210" all give "919876543210".
    """
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidPhoneNumber(str(raw))
    text = raw.strip()
    if re.search(r"[^\d\s()+.\-]", text):
        raise InvalidPhoneNumber(raw)
    digits = re.sub(r"\D", "", text)
    if text.startswith("00"):
        digits = digits[2:]
    try:
        if len(digits) == 10 and not text.startswith("+"):
            number = phonenumbers.parse(digits, default_region)
        else:
            number = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber(raw) from exc
    if not phonenumbers.is_valid_number(number):
        if _whatsapp_addressable(number):
            return f"{number.country_code}{number.national_number}"
        raise InvalidPhoneNumber(raw)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164).lstrip("+")


def _whatsapp_addressable(number: phonenumbers.PhoneNumber) -> bool:
    """Numbers the numbering plan no longer lists but WhatsApp still addresses: its
    existence query answers the id it really uses (WHATSAPP_WEB.md section 9).

    * Mexico: mobiles written with the old "1" after +52 (``+52 1 55 3437 2942``), which
      WhatsApp ids kept (code-chat-br/whatsapp-api#107, evolution-api#447).
    * Brazil: mobiles without the ninth digit (``+55 11 8765 4321``); older accounts are
      known under that id (wwebjs/whatsapp-web.js#596, devlikeapro/waha#238, wa-js PR #3216).
    Each is accepted when the number it stands for is a valid mobile.
    """
    national = str(number.national_number)
    if number.country_code == 52 and len(national) == 11 and national.startswith("1"):
        return _valid_mobile(52, national[1:])
    if number.country_code == 55 and len(national) == 10 and national[2] in "6789":
        return _valid_mobile(55, national[:2] + "9" + national[2:])
    return False


def _valid_mobile(country_code: int, national: str) -> bool:
    candidate = phonenumbers.parse(f"+{country_code}{national}", None)
    return phonenumbers.is_valid_number(candidate) and phonenumbers.number_type(candidate) in (
        phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)
