"""Following the acks of sent messages: a slot reports delivered and read for each
message it sent, from what the page shows, even across restarts and failovers."""
from __future__ import annotations

import json
import logging
import time

import redis

from browser.whatsapp import ACK_LEVELS, PageSnapshot, ack_rank, message_key
from messaging.events import EventBus
from models.states import MessageStatus
from workers.browser_session import AckWatch, BrowserSession

log = logging.getLogger("slot.acks")

MAX_ACK_WATCHES = 1000  # per session; the oldest are dropped first
WATCH_TTL = 7 * 24 * 3600  # seconds a session's watches are kept in Redis after the last change
ACK_STATUS = {"delivered": MessageStatus.DELIVERED, "read": MessageStatus.READ}


def acks_key(session_id: str) -> str:
    """Redis hash of a session's sent messages whose delivered / read acks are still to
    come (serialized WhatsApp id -> AckWatch as JSON): they outlive the slot's process."""
    return f"wa:acks:{session_id}"


class AckFollower:
    """Keeps each session's watches (in its BrowserSession and in Redis) and turns the acks
    a page snapshot shows into ``message`` events."""

    def __init__(self, client: redis.Redis, bus: EventBus):
        self.redis = client
        self.bus = bus

    def watch(self, bs: BrowserSession | None, session_id: str, wa_id: str, message_id: str, job_id: str,
              peer: str) -> None:
        """Follow a sent message's acks (``wa_id``: its serialized WhatsApp id; ``peer``: the
        recipient's digits). The watch is kept in Redis too, so a restarted slot (or another
        one after a failover) goes on following it."""
        watch = AckWatch(message_id, job_id, peer, at=time.time())
        try:
            pipe = self.redis.pipeline(transaction=True)
            pipe.hset(acks_key(session_id), wa_id, json.dumps(vars(watch)))
            pipe.expire(acks_key(session_id), WATCH_TTL)
            pipe.execute()
        except redis.RedisError as exc:  # followed in memory all the same, until a restart
            log.warning("session=%s ack watch of message=%s not kept: %s", session_id, message_id, exc)
        if bs is None:
            return
        with bs.lock:
            bs.acks[wa_id] = watch
            while len(bs.acks) > MAX_ACK_WATCHES:
                self.unwatch(bs, next(iter(bs.acks)))

    def saved(self, session_id: str) -> dict[str, AckWatch]:
        """The watches an earlier browser of the session left, oldest first (the newest
        MAX_ACK_WATCHES kept)."""
        try:
            saved = self.redis.hgetall(acks_key(session_id))
        except redis.RedisError as exc:
            log.warning("session=%s ack watches not read: %s", session_id, exc)
            return {}
        watches = []
        for wa_id, body in saved.items():
            try:
                watches.append(((wa_id.decode() if isinstance(wa_id, bytes) else wa_id), AckWatch(**json.loads(body))))
            except (TypeError, ValueError):
                continue
        watches.sort(key=lambda item: item[1].at)
        return dict(watches[-MAX_ACK_WATCHES:])

    def unwatch(self, bs: BrowserSession, wa_id: str) -> None:
        """Stop following a message's acks (``wa_id``: its WhatsApp id); a Redis error only
        leaves the saved watch to be dropped again later."""
        bs.acks.pop(wa_id, None)
        try:
            self.redis.hdel(acks_key(bs.session_id), wa_id)
        except redis.RedisError as exc:  # the watch comes back after a restart, and is done again
            log.warning("session=%s ack watch not dropped: %s", bs.session_id, exc)

    def forget(self, session_id: str) -> None:
        """Drop every watch of a session (its login was forgotten)."""
        self.redis.delete(acks_key(session_id))

    def follow(self, bs: BrowserSession, snap: PageSnapshot) -> None:
        """Report delivered / read for watched messages.

        A row of the open chat shows its own ack; the chat list shows the ack of each
        chat's last message. A chat's messages are delivered and read in order, so an
        ack seen on a newer message of ours holds for the older ones too.
        """
        floor: dict[str, int] = {}  # peer -> highest ack rank seen on a newer message
        for wa_id, watch in reversed(list(bs.acks.items())):
            seen = floor.get(watch.peer)
            if seen is None:  # the newest watched message of this chat
                seen = ack_rank(snap.chat_acks.get(watch.peer))
            rank = max(seen, ack_rank(snap.acks.get(message_key(wa_id))), ack_rank(watch.level))
            floor[watch.peer] = rank
            # Each step is reported, also when the page showed only the last one (read
            # implies delivered): job polling and webhooks see both.
            for level in ACK_LEVELS[ack_rank(watch.level) + 1:rank + 1]:
                self.bus.message(watch.message_id, watch.job_id, bs.session_id, ACK_STATUS[level].value)
                watch.level = level
            if watch.level == "read":
                self.unwatch(bs, wa_id)
