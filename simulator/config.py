"""Simulator knobs.

Every field of :class:`SimConfig` can be set from an environment variable named ``SIM_`` plus the
field name in upper case (``qr_first_ttl`` -> ``SIM_QR_FIRST_TTL``) and changed at run time with
``POST /sim/control/config`` (JSON object keyed by field name).
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("expected a number")
    return float(value)


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
        if self.qr_first_ttl <= 0 or self.qr_ttl <= 0:
            raise ValueError("QR lifetimes must be > 0")
        if self.qr_count < 1:
            raise ValueError("qr_count must be >= 1")
        if self.sync_delay < 0:
            raise ValueError("sync_delay must be >= 0")
        if self.pair_code_ttl <= 0:
            raise ValueError("pair_code_ttl must be > 0")
        if self.media_max_mb <= 0 or self.doc_max_mb <= 0:
            raise ValueError("media limits must be > 0")
        if self.latency_ms < 0:
            raise ValueError("latency_ms must be >= 0")
        if self.poll_ms < 20:
            raise ValueError("poll_ms must be >= 20")
        if not 0 <= self.port <= 65535:
            raise ValueError("port out of range")

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["unregistered"] = list(self.unregistered)
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
    "media_max_mb": _to_float,
    "doc_max_mb": _to_float,
    "deliver_delay": _to_float,
    "read_delay": _to_float,
    "latency_ms": _to_float,
    "poll_ms": _to_int,
    "state_file": _to_opt_str,
}
