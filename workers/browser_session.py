"""What a slot knows about one session's browser, shared by the slot's parts (the runtime,
the page monitor, the ack follower, delivery)."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

from browser.whatsapp import PageState, SendError, WhatsAppWeb
from models.states import SessionStatus
from workers.media import MediaError
from workers.send_rules import Restriction

DISCONNECTED = "Session is disconnected"
OFFLINE = "WhatsApp is not connected (the phone or the network is offline)"
# Page states of a logged-in page (its login is worth saving, its acks worth reading).
LOGGED_IN = frozenset({PageState.CONNECTED, PageState.TIMEOUT, PageState.CONFLICT})


class SessionOffline(Exception):
    """The session is logged in but cannot send right now; trying later can help."""


class MediaUnavailable(SendError):
    """A media item could not be fetched or read; ``permanent`` as the MediaError said."""

    def __init__(self, error: MediaError):
        super().__init__(str(error))
        self.permanent = error.permanent


@dataclass
class AckWatch:
    """A sent message whose delivered / read acks are still to come."""

    message_id: str
    job_id: str
    peer: str  # the recipient's digits, as the chat list shows them
    level: str = "sent"
    at: float = 0.0  # when it was sent (epoch seconds): the order of a session's watches


@dataclass
class BrowserSession:
    """One placement (``epoch``) of a session on this slot: its page and what was seen of it.
    Commands and the monitor take ``lock`` before touching the page."""

    session_id: str
    epoch: int
    page: WhatsAppWeb
    lock: threading.RLock = field(default_factory=threading.RLock)
    state: PageState = PageState.OPENING
    reported: SessionStatus | None = None
    qr: str | None = None
    pairing_code: str | None = None
    qr_reloads: int = 0
    takeovers: int = 0
    acks: dict[str, AckWatch] = field(default_factory=dict)
    next_backup: float | None = None  # monotonic time of the next backup while READY
    next_probe: float = 0.0  # monotonic time of the next look at the page
    backing_up: bool = False
    reason: str | None = None  # the reason last published with DISCONNECTED
    web_version: str | None = None  # the page's build (window.Debug.VERSION)
    had_login: bool = False  # the page was READY once: its profile holds a login worth saving
    unknown_since: float | None = None  # monotonic time the page stopped matching any known state
    failed_probes: int = 0  # probes failing in a row while the browser still answers
    update_reloads: int = 0  # reloads tried on NEEDS_UPDATE
    reported_dialogs: set[str] = field(default_factory=set)  # unknown dialogs already reported
    # Incoming messages (workers/incoming.py): serialized ids published since the last look
    # (the page drops them from its queue then), and the keys published by this browser.
    inbox_done: list[str] = field(default_factory=list)
    inbox_since: float | None = None  # the session's watermark (epoch seconds), read once
    inbox_seen: dict[str, None] = field(default_factory=dict)
    # A restriction WhatsApp imposes (sends pause until it lifts), and who saw it: "page"
    # (the page's modules or screen say so, and say when it ends) or "send" (a send was
    # refused; the next send after ``restriction.until`` tries again).
    restriction: Restriction | None = None
    restriction_source: str | None = None

    @property
    def driver(self):
        """The WebDriver of this session's Chrome."""
        return self.page.driver
