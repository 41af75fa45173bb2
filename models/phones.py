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
        raise InvalidPhoneNumber(raw)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164).lstrip("+")
