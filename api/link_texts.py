"""Every text of the end users' linking page (/link/<token>), in one place (English).

The page's template and its script both read them from here: the script gets them as a
JSON block in the page. ``{phone}``, ``{reason}``, ``{message}`` and ``{time}`` are filled in.
"""
from __future__ import annotations

TEXTS: dict[str, str] = {
    "lang": "en",
    "title": "Link your WhatsApp",
    "heading": "Link your WhatsApp account",
    "noscript": "This page needs JavaScript to show the QR code.",
    "status_label": "Progress",
    "idle": "Press “Show QR code” to start.",
    "start": "Show QR code",
    "starting": "Opening WhatsApp Web… the QR code appears in a few seconds.",
    "qr": "Scan this QR code with WhatsApp on your phone.",
    "qr_alt": "QR code to scan with WhatsApp. It changes every few seconds.",
    "qr_step_1": "Open WhatsApp on your phone.",
    "qr_step_2": "Tap Menu or Settings, then Linked devices.",
    "qr_step_3": "Tap Link a device and point the phone at this screen.",
    "use_phone": "Link with phone number instead",
    "use_qr": "Scan a QR code instead",
    "phone_label": "Your phone number, with country code",
    "phone_hint": "For example +91 98765 43210",
    "get_code": "Get code",
    "requesting": "Asking WhatsApp for a code…",
    "pairing": "Enter this code on your phone.",
    "pairing_label": "Your pairing code",
    "pairing_steps": "In WhatsApp: Linked devices › Link a device › Link with phone number instead.",
    "scanned": "Scanned. Syncing your chats…",
    "linked": "Linked as {phone}. You can close this page.",
    "ended_LOGOUT": "You logged out on your phone: this device is no longer linked.",
    "ended_QR_TIMEOUT": "The QR code was not scanned in time.",
    "ended": "The connection ended ({reason}).",
    "start_again": "Start again",
    "expired": "This link has expired. Ask for a new one.",
    "expired_title": "Link expired",
    "invalid": "This link is not valid. Check that you copied all of it, or ask for a new one.",
    "invalid_title": "Link not valid",
    "error": "Something went wrong: {message}",
    "expires": "This link works until {time}.",
}
