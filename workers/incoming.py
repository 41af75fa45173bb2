"""Following the messages a READY session receives: each becomes one
``IncomingMessageEvent`` (recorded once per session and WhatsApp id by the recorder,
models/recording.py ``record_incoming_message``).

Two routes, as the page answers (browser/whatsapp.py ``Inbox``):

- **modules**: the page's message collection; every new message that is not ours, with its
  id, sender (``@c.us`` or ``@lid``), type, media details and the id of the message it quotes.
  A new document (a reload, a restarted slot) also hands over the messages it already holds
  that are newer than the session's watermark: a message seen twice is recorded once.
- **dom**: the chat list only (opening a chat would mark it read): a chat whose unread count
  grew, or whose preview changed while unread, has a new message, the preview's text. Each
  chat's last count and preview are kept in Redis, so a restarted slot does not take what it
  saw before for new; the first look at a session only takes note (no history is reported).
"""
from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timezone

import redis

from browser.whatsapp import ChatPreview, Inbox, Incoming
from messaging.events import EventBus
from models.events import IncomingMessageEvent
from workers.browser_session import BrowserSession

log = logging.getLogger("slot.incoming")

STATE_TTL = 30 * 24 * 3600  # seconds a session's incoming state is kept in Redis after its last change
SINCE_MARGIN = 300.0  # seconds before the newest message taken that a new document hands over again
# The first look at a session also takes what arrived this long before it (the page's times are
# whole seconds, and a message may come between READY and the first look); older is history.
FIRST_LOOK_MARGIN = 60.0
MAX_SEEN = 5000  # keys remembered per browser
MEDIA_KINDS = {"image": "image", "video": "video", "audio": "audio", "ptt": "audio", "document": "document",
               "sticker": "sticker"}


def incoming_key(session_id: str) -> str:
    """Redis hash of a session's incoming state: ``since`` (epoch seconds), ``dom`` (JSON:
    chat -> {unread, text, n})."""
    return f"wa:incoming:{session_id}"


def _iso(epoch: float | None) -> str:
    return datetime.fromtimestamp(epoch if epoch is not None else time.time(), timezone.utc).isoformat()


def event_of(session_id: str, epoch: int, msg: Incoming) -> IncomingMessageEvent:
    """The event for one message of the page's collection."""
    kind = MEDIA_KINDS.get(msg.type)
    return IncomingMessageEvent(
        session_id=session_id, epoch=epoch, wa_message_id=msg.key, wa_serialized=msg.serialized,
        received_at=_iso(msg.t), sender_wa_id=msg.sender_wa_id, sender_number=msg.sender_number,
        msg_type=msg.type, text=msg.text, media_kind=kind if kind or msg.mimetype else None,
        media_mimetype=msg.mimetype, media_filename=msg.filename, media_size=msg.size,
        quoted_wa_message_id=msg.quoted_key, route="modules")


def dom_changes(before: dict[str, dict], chats: tuple[ChatPreview, ...]) -> tuple[dict[str, dict], list[tuple[str, ChatPreview, int]]]:
    """Compare the chat list with what was seen before (chat -> {unread, text, n}): the new
    state and each chat with a new message (chat, preview, its number n for that chat). A
    chat has one when its unread count grew or its preview changed (the open chat's messages
    are read at once), or when it is in the list for the first time (the list shows the most
    recent chats: only a new message brings one in); a chat whose newest message is ours (a
    status icon) has none. Two messages between two looks are one
    (the newest preview): the chat list tells no more."""
    after = dict(before)
    new = []
    for chat in chats:
        name = chat.phone or chat.title
        if not name:
            continue
        prev = before.get(name)
        seen = {"unread": chat.unread, "text": chat.text, "n": (prev or {}).get("n", 0)}
        if prev is None:  # a chat that came into the list: only a new message brings one to the top
            fresh = True
        else:  # in the open chat a message is read at once: its preview still changes
            fresh = chat.unread > prev.get("unread", 0) or chat.text != prev.get("text")
        if fresh and not chat.ours:
            seen["n"] += 1
            new.append((name, chat, seen["n"]))
        after[name] = seen
    return after, new


class IncomingFollower:
    """Asks each READY page for what arrived and publishes one event per new message."""

    def __init__(self, client: redis.Redis, bus: EventBus):
        self.redis = client
        self.bus = bus

    def request(self, bs: BrowserSession) -> dict:
        """What to ask the page (``WhatsAppWeb.snapshot(inbox=...)``): the watermark and the
        ids published since the last look."""
        if bs.inbox_since is None:  # read once per browser: the page uses it when its listener starts
            try:
                raw = self.redis.hget(incoming_key(bs.session_id), "since")
                bs.inbox_since = float(raw) if raw is not None else None
            except (redis.RedisError, ValueError) as exc:
                log.warning("session=%s incoming watermark not read: %s", bs.session_id, exc)
            if bs.inbox_since is None:  # the first look at this session: from about now on (no history)
                bs.inbox_since = time.time() - FIRST_LOOK_MARGIN
                self._save(bs.session_id, since=bs.inbox_since)
        return {"since": bs.inbox_since, "done": list(bs.inbox_done)}

    def follow(self, bs: BrowserSession, inbox: Inbox) -> int:
        """Publish the new messages ``inbox`` shows; the number published."""
        if inbox.route == "modules":
            return self._from_modules(bs, inbox.messages)
        return self._from_dom(bs, inbox.chats)

    def _from_modules(self, bs: BrowserSession, messages: tuple[Incoming, ...]) -> int:
        bs.inbox_done = []
        published, newest = 0, None
        for msg in messages:
            if msg.key in bs.inbox_seen:
                bs.inbox_done.append(msg.serialized)
                continue
            # Raises when Redis fails: the page keeps this one and the rest for the next look.
            self.bus.incoming(event_of(bs.session_id, bs.epoch, msg))
            bs.inbox_seen[msg.key] = None
            bs.inbox_done.append(msg.serialized)
            published += 1
            if msg.t is not None:
                newest = max(newest or msg.t, msg.t)
            log.info("session=%s incoming message %s (%s) from %s", bs.session_id, msg.key, msg.type,
                     msg.sender_wa_id)
        while len(bs.inbox_seen) > MAX_SEEN:
            bs.inbox_seen.pop(next(iter(bs.inbox_seen)))
        if newest is not None and newest - SINCE_MARGIN > (bs.inbox_since or 0):
            # A reloaded page (a new document) hands over again only what is newer than this.
            bs.inbox_since = newest - SINCE_MARGIN
            self._save(bs.session_id, since=bs.inbox_since)
        return published

    def _from_dom(self, bs: BrowserSession, chats: tuple[ChatPreview, ...]) -> int:
        key = incoming_key(bs.session_id)
        try:
            raw = self.redis.hget(key, "dom")
        except redis.RedisError as exc:
            log.warning("session=%s chat-list state not read: %s", bs.session_id, exc)
            return 0
        first = raw is None
        before = {} if first else json.loads(raw)
        after, new = dom_changes(before, chats)
        if first:  # the first look only takes note: unread chats from before are history
            new = []
        for name, chat, n in new:
            phone = chat.phone or None
            self.bus.incoming(IncomingMessageEvent(
                session_id=bs.session_id, epoch=bs.epoch, wa_message_id=f"dom-{name}-{n}"[:160],
                received_at=_iso(None), sender_wa_id=f"{phone}@c.us" if phone else None, sender_number=phone,
                msg_type="chat", text=chat.text, route="dom"))
            log.info("session=%s incoming message in chat %s (chat list)", bs.session_id, name)
        if first or after != before:
            self._save(bs.session_id, dom=json.dumps(after, separators=(",", ":")))
        return len(new)

    def _save(self, session_id: str, **values) -> None:
        try:
            pipe = self.redis.pipeline(transaction=True)
            pipe.hset(incoming_key(session_id), mapping={k: str(v) for k, v in values.items()})
            pipe.expire(incoming_key(session_id), STATE_TTL)
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("session=%s incoming state not kept: %s", session_id, exc)

    def forget(self, session_id: str) -> None:
        """Drop a session's incoming state (its login was forgotten)."""
        self.redis.delete(incoming_key(session_id))
