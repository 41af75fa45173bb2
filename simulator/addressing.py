"""How the 2026 page names people and itself: LIDs, wids, shown titles; plus the browser checks
(user agent gate, locale) a page load goes through.

LID addressing (2025-26): many 1:1 chats, and our own rows, are keyed by a hidden ``<digits>@lid``
instead of ``<phone>@c.us`` (see docs/simulator.md, "Addressing"). The simulator derives one LID
per number from a hash, so the same number always has the same LID, across restarts too.
"""
from __future__ import annotations

import hashlib
import re
from typing import Any

try:  # in requirements.txt; the simple grouping below is the fallback
    import phonenumbers
except ImportError:  # pragma: no cover
    phonenumbers = None

LID_DIGITS = 15

# stage minimums of the loading screen (module WAWebDebouncedLoadingScreen.react), seconds
BOOT_STAGES = (("INITIAL_LOAD", 0.5), ("CONNECTING", 1.5), ("DOWNLOADING", 0.45), ("PAUSE", 0.45),
               ("ORGANIZING", 0.8))


def _hash_int(prefix: str, value: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{prefix}:{value}".encode()).digest()[:8], "big")


def lid_for(phone: str) -> str:
    """The LID of a phone number: 15 digits, first digit 1-9, fixed per number."""
    span = 9 * 10 ** (LID_DIGITS - 1)
    return str(10 ** (LID_DIGITS - 1) + _hash_int("sim-lid", phone) % span)


def lid_fraction(phone: str) -> float:
    """A number in [0, 1) fixed per phone number; the number is addressed by LID when < lid_share."""
    return _hash_int("sim-lid-share", phone) / float(1 << 64)


def pn_wid(phone: str) -> str:
    return f"{phone}@c.us"


def lid_wid(lid: str) -> str:
    return f"{lid}@lid"


def split_wid(raw: Any) -> tuple[str, str] | None:
    """("<user>", "c.us"|"lid") for a wid string (or {"_serialized": ...}), None otherwise."""
    if isinstance(raw, dict):
        raw = raw.get("_serialized") or (f"{raw.get('user')}@{raw.get('server')}" if raw.get("user") else None)
    if not isinstance(raw, str):
        return None
    m = re.fullmatch(r"\s*\+?(\d{5,20})(?::\d+)?@(c\.us|s\.whatsapp\.net|lid)\s*", raw)
    if not m:
        return None
    server = "lid" if m.group(2) == "lid" else "c.us"
    return m.group(1), server


def _fallback_title(phone: str) -> str:
    cc_len = 2
    if phonenumbers is not None:
        for n in (1, 2, 3):
            if int(phone[:n]) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
                cc_len = n
                break
    cc, rest = phone[:cc_len], phone[cc_len:]
    groups = [rest[i:i + 3] for i in range(0, len(rest), 3)]
    if len(groups) > 1 and len(groups[-1]) == 1:
        last = groups.pop()
        groups[-1] += last
    return " ".join(["+" + cc] + groups)


def format_title(phone: str) -> str:
    """How WhatsApp shows an unsaved number: "+91 98765 43210"."""
    if phonenumbers is not None:
        try:
            num = phonenumbers.parse("+" + phone, None)
            text = phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
            if re.sub(r"\D", "", text) == phone:
                return text
        except phonenumbers.NumberParseException:
            pass
    return _fallback_title(phone)


def boot_stages(boot_seconds: float) -> list[dict[str, Any]]:
    """The stage minimums of the real loading screen, scaled to last ``boot_seconds`` in total."""
    total = sum(s for _, s in BOOT_STAGES)
    return [{"stage": name, "seconds": round(boot_seconds * s / total, 4)} for name, s in BOOT_STAGES]


def ua_refused(user_agent: str, min_chrome: int) -> bool:
    """True for the user agents the real page sends to "WhatsApp works with Google Chrome N+"."""
    ua = user_agent or ""
    if "HeadlessChrome" in ua or "Electron/" in ua or ua.startswith("WhatsApp/"):
        return True
    m = re.search(r"\b(?:Chrome|Chromium|CriOS)/(\d+)", ua)
    return bool(m and int(m.group(1)) < min_chrome)


def _first_language(accept_language: str | None) -> str | None:
    best, best_q = None, -1.0
    for part in (accept_language or "").split(","):
        bits = part.strip().split(";")
        tag = bits[0].strip()
        if not tag or tag == "*":
            continue
        q = 1.0
        for b in bits[1:]:
            b = b.strip()
            if b.startswith("q="):
                try:
                    q = float(b[2:])
                except ValueError:
                    q = 0.0
        if q > best_q:
            best, best_q = tag, q
    return best


def resolve_locale(knob: str, language: Any = None, accept_language: str | None = None) -> str:
    """"en" or "pt-BR": the knob unless "auto", else the page's navigator.language, else Accept-Language."""
    if knob != "auto":
        return knob
    tag = language if isinstance(language, str) and language.strip() else _first_language(accept_language)
    return "pt-BR" if (tag or "").strip().lower().startswith("pt") else "en"


UNSUPPORTED_TEXTS = {
    "en": ("WhatsApp works with Google Chrome {n}+",
           "To use WhatsApp, update Chrome or use Mozilla Firefox, Safari, Microsoft Edge or Opera.",
           "Update Google Chrome"),
    "pt-BR": ("O WhatsApp funciona com o Google Chrome {n}+",
              "Para usar o WhatsApp, atualize o Chrome ou use o Mozilla Firefox, Safari, Microsoft Edge ou Opera.",
              "Atualizar o Google Chrome"),
}


def unsupported_html(min_chrome: int, locale: str) -> str:
    """The plain page served instead of the app to a refused user agent (no script, no #app)."""
    title, body, link = UNSUPPORTED_TEXTS.get(locale, UNSUPPORTED_TEXTS["en"])
    title = title.format(n=int(min_chrome))
    lang = "pt-BR" if locale == "pt-BR" else "en"
    return f"""<!DOCTYPE html>
<html lang="{lang}" dir="ltr">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>WhatsApp</title>
<style>body{{margin:0;font-family:Segoe UI,Helvetica Neue,Helvetica,Arial,sans-serif;background:#f0f2f5;color:#3b4a54}}
.unsupported-browser{{max-width:560px;margin:12vh auto;padding:40px;background:#fff;text-align:center;
border-radius:8px}}
h1{{font-size:24px;font-weight:400;color:#41525d}}a{{color:#008069}}</style>
</head>
<body>
<div class="unsupported-browser" data-screen="UNSUPPORTED_BROWSER">
<h1>{title}</h1>
<p>{body}</p>
<p><a href="/sim/outside?to=https%3A%2F%2Fwww.google.com%2Fchrome%2F" data-nohandle="true">{link}</a></p>
</div>
</body>
</html>
"""
