"""Simulator knobs.

Every field of :class:`SimConfig` can be set from an environment variable named ``SIM_`` plus the
field name in upper case (``qr_first_ttl`` -> ``SIM_QR_FIRST_TTL``) and changed at run time with
``POST /sim/control/config`` (JSON object keyed by field name).

Two page profiles: ``"2026"`` (default; the 2025-2026 page) and ``"legacy"`` (the 2021-2023 page
the simulator reproduced first). The knobs after ``state_file`` apply to the 2026 profile only.
"""
from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
import re
from typing import Any, Callable, Mapping

PROFILES = ("2026", "legacy")
LOCALES = ("auto", "en", "pt-BR")
RESTRICTIONS = ("none", "reachout_timelock", "new_chat_cap")


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("expected a number")
    out = float(value)
    if math.isnan(out):
        raise ValueError("expected a number")
    return out


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected an integer")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("expected an integer")
        return int(value)
    return int(str(value).strip())


def _to_str(value: Any) -> str:
    return str(value)


def _to_opt_str(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("expected true or false")


def _to_profile(value: Any) -> str:
    text = str(value).strip().lower()
    if text in PROFILES:
        return text
    raise ValueError(f"expected one of {', '.join(PROFILES)}")


def _to_locale(value: Any) -> str:
    text = str(value).strip()
    low = text.lower().replace("_", "-")
    if low == "auto":
        return "auto"
    if low == "en" or low.startswith("en-"):
        return "en"
    if low in ("pt", "pt-br"):
        return "pt-BR"
    raise ValueError("expected auto, en or pt-BR")


def _to_choice(*choices: str) -> Callable[[Any], str]:
    def convert(value: Any) -> str:
        text = str(value).strip().lower()
        if text not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}")
        return text
    return convert


def _to_version(value: Any) -> str:
    text = str(value).strip()
    if not re.fullmatch(r"[0-9A-Za-z][0-9A-Za-z.\-]{0,63}", text):
        raise ValueError("expected a build string like 2.3000.1030472176")
    return text


def _to_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, (list, tuple, set)):
        items = [str(v) for v in value]
    else:
        raise ValueError("expected a list or a comma separated string")
    out = []
    for item in items:
        digits = item.strip().lstrip("+").replace(" ", "")
        if digits:
            out.append(digits)
    return out


@dataclass
class SimConfig:
    """All knobs of the simulator. Times are seconds (floats allowed), sizes MiB."""

    host: str = "127.0.0.1"
    port: int = 3100
    # QR login
    qr_first_ttl: float = 60.0  # lifetime of the first QR code of a series
    qr_ttl: float = 20.0  # lifetime of each later QR code
    qr_count: int = 6  # QR codes per series before the "Click to reload QR code" state
    sync_delay: float = 1.0  # scan/pairing -> chat list
    pair_code_ttl: float = 180.0  # lifetime of a "link with phone number" code
    # numbers
    unregistered: list[str] = field(default_factory=lambda: ["919999999999"])
    # Brazilian accounts WhatsApp knows without the ninth digit (55 + area + 8 digits)
    legacy_br_numbers: list[str] = field(default_factory=list)
    # new chats (no message either way yet) an account may open, in the app or by a link, before
    # a registered number gets the invalid-number dialog as an unregistered one does; -1 = no limit
    link_limit: int = -1
    # media limits in MiB
    media_max_mb: float = 16.0  # photos and videos
    doc_max_mb: float = 100.0  # documents
    # acks; negative = never
    deliver_delay: float = 1.0  # server ack -> delivered
    read_delay: float = 2.0  # delivered -> read
    # network
    latency_ms: float = 0.0  # added to every /sim/api/ call of the page
    poll_ms: int = 200  # page polling interval
    # persistence of linked devices (None = memory only)
    state_file: str | None = None
    # ---- page profile; everything below applies to the 2026 profile only
    profile: str = "2026"  # "2026" | "legacy"; applies to page loads after a change
    locale: str = "auto"  # auto (browser language: pt* -> pt-BR, else en) | en | pt-BR
    boot_seconds: float = 4.0  # loading screen of every full page load before the page connects
    # LID addressing of peers: pn_numbers wins over lid_numbers, which wins over lid_share
    lid_share: float = 0.5  # share of numbers addressed by LID (chosen by a hash of the number)
    lid_numbers: list[str] = field(default_factory=list)  # always by LID
    pn_numbers: list[str] = field(default_factory=list)  # never by LID
    # page modules (window.require) and build
    modules: bool = True  # false: window.require('WAWeb...') throws (renamed modules)
    open_chat_args: str = "object"  # Cmd.openChatBottom signature: "object" | "positional"
    version: str = "2.3000.1030472176"  # window.Debug.VERSION
    # dialogs and reloads after a fresh link
    onboarding: bool = True  # "What's new on WhatsApp Web" after a fresh link
    onboarding_delay: float = 1.0  # first MAIN of a fresh link -> dialog
    onboarding_timeout: float = 300.0  # dialog shown and not acknowledged -> device revoked
    cookie_banner: bool = True  # cookie dialog on the login page until answered
    first_reload_after_link: float = 300.0  # fresh link -> the page reloads itself once; < 0 never
    # browser gate
    ua_gate: bool = True  # unsupported-browser page for HeadlessChrome, Electron/, WhatsApp/..., old Chrome
    min_chrome: int = 100
    # page memory
    page_heap_mb: float = 0.0  # MiB of live JS objects the page keeps and touches
    # account restriction on new chats: "none" | "reachout_timelock" (restricted compose bar, a
    # restricted modal on new chats by link) | "new_chat_cap" (capped compose bar); chats with
    # earlier messages are not restricted
    restriction: str = "none"

    @staticmethod
    def env_name(name: str) -> str:
        return "SIM_" + name.upper()

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "SimConfig":
        env = os.environ if environ is None else environ
        values = {}
        for name in cls.field_names():
            key = cls.env_name(name)
            if key in env:
                values[name] = env[key]
        return cls().updated(values)

    def updated(self, values: Mapping[str, Any]) -> "SimConfig":
        """Return a copy with ``values`` applied; raises ValueError on unknown or bad fields."""
        if not isinstance(values, Mapping):
            raise ValueError("config must be a JSON object")
        known = set(self.field_names())
        changes: dict[str, Any] = {}
        for name, raw in values.items():
            if name not in known:
                raise ValueError(f"unknown config field {name!r}")
            try:
                changes[name] = _CONVERTERS[name](raw)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"bad value for {name}: {raw!r} ({exc})") from None
        new = dataclasses.replace(self, **changes)
        new.validate()
        return new

    def validate(self) -> None:
        """ValueError naming the first setting out of its range."""
        rules = (
            (self.qr_first_ttl > 0 and self.qr_ttl > 0, "QR lifetimes must be > 0"),
            (self.qr_count >= 1, "qr_count must be >= 1"),
            (self.sync_delay >= 0, "sync_delay must be >= 0"),
            (self.pair_code_ttl > 0, "pair_code_ttl must be > 0"),
            (self.link_limit >= -1, "link_limit must be >= -1"),
            (self.media_max_mb > 0 and self.doc_max_mb > 0, "media limits must be > 0"),
            (self.latency_ms >= 0, "latency_ms must be >= 0"),
            (self.poll_ms >= 20, "poll_ms must be >= 20"),
            (0 <= self.port <= 65535, "port out of range"),
            (self.profile in PROFILES, "profile must be '2026' or 'legacy'"),
            (self.locale in LOCALES, "locale must be auto, en or pt-BR"),
            (0 <= self.boot_seconds <= 600, "boot_seconds must be between 0 and 600"),
            (0.0 <= self.lid_share <= 1.0, "lid_share must be between 0 and 1"),
            (self.open_chat_args in ("object", "positional"), "open_chat_args must be 'object' or 'positional'"),
            (self.onboarding_delay >= 0, "onboarding_delay must be >= 0"),
            (self.onboarding_timeout > 0, "onboarding_timeout must be > 0"),
            (self.min_chrome >= 1, "min_chrome must be >= 1"),
            (0 <= self.page_heap_mb <= 4096, "page_heap_mb must be between 0 and 4096"),
        )
        for ok, why in rules:
            if not ok:
                raise ValueError(why)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for name in ("unregistered", "legacy_br_numbers", "lid_numbers", "pn_numbers"):
            data[name] = list(getattr(self, name))
        return data


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "host": _to_str,
    "port": _to_int,
    "qr_first_ttl": _to_float,
    "qr_ttl": _to_float,
    "qr_count": _to_int,
    "sync_delay": _to_float,
    "pair_code_ttl": _to_float,
    "unregistered": _to_list,
    "legacy_br_numbers": _to_list,
    "link_limit": _to_int,
    "media_max_mb": _to_float,
    "doc_max_mb": _to_float,
    "deliver_delay": _to_float,
    "read_delay": _to_float,
    "latency_ms": _to_float,
    "poll_ms": _to_int,
    "state_file": _to_opt_str,
    "profile": _to_profile,
    "locale": _to_locale,
    "boot_seconds": _to_float,
    "lid_share": _to_float,
    "lid_numbers": _to_list,
    "pn_numbers": _to_list,
    "modules": _to_bool,
    "open_chat_args": _to_choice("object", "positional"),
    "version": _to_version,
    "onboarding": _to_bool,
    "onboarding_delay": _to_float,
    "onboarding_timeout": _to_float,
    "cookie_banner": _to_bool,
    "first_reload_after_link": _to_float,
    "ua_gate": _to_bool,
    "min_chrome": _to_int,
    "page_heap_mb": _to_float,
    "restriction": _to_choice(*RESTRICTIONS),
}
