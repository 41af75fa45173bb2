"""Phone numbers as WhatsApp wants them: E.164 digits without the plus sign."""
from __future__ import annotations

import functools
import re

import phonenumbers

INVALID_PHONE = "Invalid phone number format"
NOT_A_PHONE = ("must be a phone number: groups (…@g.us), broadcast lists (…@broadcast), channels "
               "(…@newsletter) and other WhatsApp ids cannot be sent to")
# A WhatsApp id (a "JID", user@server) rather than a number: the servers WhatsApp Web's ids
# carry (WAWebWidFactory; WHATSAPP_WEB.md sections 2 and 7).
_WHATSAPP_ID = re.compile(r"\s*[^@\s]+@(?:g\.us|broadcast|newsletter|lid|c\.us|s\.whatsapp\.net|call)\s*",
                          re.IGNORECASE)


class InvalidPhoneNumber(ValueError):
    """A number that cannot be read as an international phone number; ``raw`` is the
    input, the message the seed's (``INVALID_PHONE``)."""

    def __init__(self, raw: str):
        super().__init__(INVALID_PHONE)
        self.raw = raw


# A person's WhatsApp id by number ("919876543210@c.us", as whatsapp-web.js names chats):
# its user part is the number, with its country code (the seed's sanitizer kept its digits).
_PERSON_ID = re.compile(r"\s*\+?(\d{6,15})@(?:c\.us|s\.whatsapp\.net)\s*", re.IGNORECASE)


def is_whatsapp_id(raw: object) -> bool:
    """Whether ``raw`` is a WhatsApp id such as a group's ``120363…@g.us``, ``status@broadcast``,
    a channel's ``…@newsletter`` or a person's ``…@lid``, not a number. A person's id by
    number (``919876543210@c.us``) is a number: ``normalize_phone`` reads it."""
    return isinstance(raw, str) and _WHATSAPP_ID.fullmatch(raw) is not None and _PERSON_ID.fullmatch(raw) is None


@functools.lru_cache(maxsize=4096)  # a request checks its numbers, then uses them
def normalize_phone(raw: str, default_region: str = "IN") -> str:
    """Parse an international number; 10 bare digits take the default region (as the seed's sanitizer).

    "919876543210", "+91 98765 43210", "9876543210" and "919876543210@c.us" all give
    "919876543210". Raises
    InvalidPhoneNumber for anything else (never remembered: only answers are).
    """
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidPhoneNumber(str(raw))
    text = raw.strip()
    if person := _PERSON_ID.fullmatch(text):  # "919876543210@c.us": the number, country code included
        text = "+" + person.group(1)
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


def number_forms(digits: str) -> set[str]:
    """The ways one WhatsApp account's number is written: a Mexican mobile with or without
    the old "1" after 52, a Brazilian mobile with or without its ninth digit (WhatsApp's
    existence query answers the form it knows; WHATSAPP_WEB.md section 9)."""
    forms = {digits}
    if digits.startswith("52") and len(digits) == 13 and digits[2] == "1":
        forms.add("52" + digits[3:])
    elif digits.startswith("52") and len(digits) == 12:
        forms.add("521" + digits[2:])
    elif digits.startswith("55") and len(digits) == 13 and digits[4] == "9" and digits[5] in "6789":
        forms.add(digits[:4] + digits[5:])
    elif digits.startswith("55") and len(digits) == 12 and digits[4] in "6789":
        forms.add(digits[:4] + "9" + digits[4:])
    return forms


def same_account(a: str, b: str) -> bool:
    """Whether two numbers (digits) reach the same WhatsApp account (see number_forms)."""
    return bool(number_forms(a) & number_forms(b))


def _whatsapp_addressable(number: phonenumbers.PhoneNumber) -> bool:
    """Numbers the numbering plan no longer lists but WhatsApp still addresses: its
    existence query answers the id it really uses (WHATSAPP_WEB.md section 9).

    * Mexico: mobiles written with the old "1" after +52 (``+52 1 55 3437 2942``), which
      WhatsApp ids kept (code-chat-br/whatsapp-api#107, evolution-api#447).
    * Brazil: mobiles without the ninth digit (``+55 11 8765 4321``); older accounts are
      known under that id (wwebjs/whatsapp-web.js#596, devlikeapro/waha#238, wa-js PR #3216).
    Each is accepted when the number it stands for (its other form, ``number_forms``) is a
    valid mobile.
    """
    digits = f"{number.country_code}{number.national_number}"
    return any(_valid_mobile(form) for form in number_forms(digits) - {digits})


def _valid_mobile(digits: str) -> bool:
    candidate = phonenumbers.parse(f"+{digits}", None)
    return phonenumbers.is_valid_number(candidate) and phonenumbers.number_type(candidate) in (
        phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)
