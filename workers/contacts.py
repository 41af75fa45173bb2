"""Number checks and chat reads through a session's page (the slot's side of
``POST /webjs/sessions/{id}/contacts/check`` and ``.../chats/{number}/read``).

WhatsApp limits its existence query as it limits sends (WHATSAPP_WEB.md section 9), so
each check takes a turn of the session's own check pace (``wa:pace:<session>:check``, kept
apart from its sends': a check never delays a message, nor the reverse).
"""
from __future__ import annotations

import logging
import math
import secrets
import time
from collections.abc import Callable
from datetime import datetime, timezone

import redis
from selenium.common.exceptions import WebDriverException

from browser.whatsapp import SendError, SendRestricted
from messaging.contacts import ContactAnswer, ContactCache
from messaging.pacing import Pacer, PacingPolicy
from models import seed_timestamp
from settings import Settings
from workers.browser_session import BrowserSession

log = logging.getLogger("slot.contacts")

# The longest a check waits for its turn inside the task; the numbers whose turn is later
# are answered "checked too often" (the slot's queue must not stall for a cap).
TURN_WAIT_MAX = 10.0


def pace_key(session_id: str) -> str:
    """The pacing key of a session's checks (``Pacer`` keys: ``wa:pace:<this>:…``)."""
    return f"{session_id}:check"


class NumberChecks:
    """A slot's number checks: the page's existence query, paced per session apart from
    sends, each answer kept in the session's cache."""

    def __init__(self, settings: Settings, client: redis.Redis,
                 session_for_send: Callable[[str, int], BrowserSession]):
        self.settings = settings
        self.pacer = Pacer(client)
        self.cache = ContactCache(client, settings.contact_check_cache_seconds)
        self.policy = PacingPolicy(settings.contact_check_min_gap, settings.contact_check_max_gap,
                                   settings.contact_check_hourly_cap, settings.contact_check_daily_cap)
        self.session_for_send = session_for_send

    def check(self, session_id: str, epoch: int, numbers: list[str]) -> dict[str, dict]:
        """Ask the page about each number (digits), in the session's check pace; each
        answer is kept in the contact cache as it comes. Returns number -> ``{exists,
        wa_id, checked_at}`` or ``{error}``. Raises LookupError or SessionOffline when the
        session's page is not READY here."""
        bs = self.session_for_send(session_id, epoch)
        results: dict[str, dict] = {}
        for number in numbers:
            turn = f"chk_{secrets.token_hex(6)}"
            reserved = self.pacer.reserve(pace_key(session_id), turn, self.policy)
            wait = reserved.at - time.time()
            if wait > TURN_WAIT_MAX:
                self.pacer.release(pace_key(session_id), turn)
                results[number] = {"error": "Checked too often; ask again after "
                                            f"{seed_timestamp(datetime.fromtimestamp(math.ceil(reserved.at), timezone.utc))}"}
                continue
            if wait > 0:
                time.sleep(wait)
            try:
                with bs.lock:
                    found = bs.page.check_number(number, timeout=self.settings.send_timeout)
            except SendRestricted as exc:
                results[number] = {"error": f"WhatsApp restricts this account for now ({exc.kind})"}
                continue
            except (SendError, WebDriverException) as exc:
                results[number] = {"error": f"Not checked: {getattr(exc, 'msg', None) or exc}"[:300]}
                continue
            finally:
                self.pacer.forget(pace_key(session_id), turn)
            answer = ContactAnswer(found.exists, found.wid, datetime.now(timezone.utc).isoformat())
            self.cache.put(session_id, number, answer)
            results[number] = {"exists": answer.exists, "wa_id": answer.wa_id, "checked_at": answer.checked_at}
            log.info("session=%s number check answered by the %s route", session_id, found.route)
        return results

    def mark_read(self, session_id: str, epoch: int, phone: str) -> str:
        """Mark the chat with ``phone`` read (see ``WhatsAppWeb.mark_chat_read``); the route
        that did it. Raises LookupError, SessionOffline, SendError."""
        bs = self.session_for_send(session_id, epoch)
        with bs.lock:
            return bs.page.mark_chat_read(phone, timeout=self.settings.send_timeout)
