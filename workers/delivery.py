"""Delivery: one message through a session's page, each part once.

Media is fetched (URLs) or read from the media store (inline files, by reference) and
checked before the page is touched. Each part records, just before
it commits, the chat's newest row (``wa:msg:<id>:commit:<part>``) and, once out, its
WhatsApp id (``wa:msg:<id>:part:<part>``). Before a part is sent, ``send_rules.look_before_send``
decides whether an earlier attempt may have sent it; if so it is looked for in the chat
first, anchored on that marker and on what PostgreSQL and the task know (``earlier``).
"""
from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from pathlib import Path

import redis

from browser.whatsapp import message_key
from settings import Settings
from storage.media import MediaExpired, MediaStore, MediaStoreError
from workers.browser_session import BrowserSession, MediaUnavailable
from workers.media import Media, MediaError, MediaLimits, fetch_media, media_from_base64, media_from_bytes
from workers.netguard import AllowList
from workers.send_rules import look_before_send

log = logging.getLogger("slot.delivery")

MARKER_TTL = 7 * 24 * 3600  # seconds the part and commit markers are kept


def part_key(message_id: str, part: int) -> str:
    """The WhatsApp id of a part that went out."""
    return f"wa:msg:{message_id}:part:{part}"


def commit_key(message_id: str, part: int) -> str:
    """The chat's newest row (serialized id, '' for an empty chat) when a part was committed."""
    return f"wa:msg:{message_id}:commit:{part}"


class Delivery:
    """Sends messages through the pages of a slot's sessions."""

    def __init__(self, settings: Settings, client: redis.Redis,
                 session_for_send: Callable[[str, int], BrowserSession], media_store: MediaStore):
        self.settings = settings
        self.redis = client
        self.session_for_send = session_for_send
        self.media_store = media_store
        self.media_limits = MediaLimits(media_bytes=settings.media_max_mb * 1024 * 1024,
                                        document_bytes=settings.document_max_mb * 1024 * 1024,
                                        timeout=settings.media_fetch_timeout)
        self.media_allow = AllowList.parse(settings.media_allow_networks)

    def deliver(self, session_id: str, epoch: int, message_id: str, to: str, text: str,
                media: list[dict] | None = None, *, earlier: dict | None = None) -> str:
        """Send one message (text, or media with the text as caption of the first file) to
        ``to`` (E.164 digits); return the WhatsApp id of its first part.

        ``earlier``: what PostgreSQL (or the task, ``send_rules.earlier_attempts``) knows of
        earlier dispatches of this message that were never confirmed (``{"since": epoch
        seconds, "after_id": wa id or None}``); with it,
        or with a commit marker left by an earlier attempt, each part is first looked for
        in the chat and only sent if it is not there.

        Raises LookupError (session gone or not ready), SessionOffline, SendError
        (SendRestricted, NumberNotOnWhatsApp, UnconfirmedSend, MediaUnavailable, ...).
        """
        bs = self.session_for_send(session_id, epoch)
        with tempfile.TemporaryDirectory(prefix="wa-media-", dir=self._media_dir()) as tmp:
            files = [self._media_file(item, Path(tmp)) for item in media or []]
            parts = files or [None]
            ids: list[str] = []
            with bs.lock:
                for i, item in enumerate(parts):
                    done = self.redis.get(part_key(message_id, i))
                    if done:  # a retry after a partial send skips the parts that went out
                        ids.append(done.decode())
                        continue
                    caption = text if i == 0 else ""
                    wa_id = self._look(bs, message_id, i, to, caption, earlier)

                    def on_commit(after_row: str | None, key=commit_key(message_id, i)) -> None:
                        self.redis.set(key, after_row or "", ex=MARKER_TTL)

                    if wa_id is None and item is None:
                        wa_id = bs.page.send_text(to, text, timeout=self.settings.send_timeout, on_commit=on_commit)
                    elif wa_id is None:
                        wa_id = bs.page.send_file(to, item.path, as_media=item.kind == "media", caption=caption,
                                                  timeout=self.settings.send_timeout + self.settings.media_fetch_timeout,
                                                  on_commit=on_commit)
                    self.redis.set(part_key(message_id, i), wa_id, ex=MARKER_TTL)
                    ids.append(wa_id)
            return ids[0]

    def _look(self, bs: BrowserSession, message_id: str, part: int, to: str, caption: str,
              earlier: dict | None) -> str | None:
        """The WhatsApp id of this part when an earlier attempt sent it, else None."""
        marker = self.redis.get(commit_key(message_id, part))
        look = look_before_send(commit_marker=None if marker is None else marker.decode(), earlier=earlier)
        if look is None:
            return None
        wa_id = bs.page.find_sent(to, text=caption, after_row=look.after_row, since=look.since,
                                  after_id=look.after_id, timeout=self.settings.send_timeout)
        if wa_id:
            log.info("message=%s part %d was sent by an earlier attempt (%s)", message_id, part, message_key(wa_id))
        return wa_id

    def recipient_wid(self, bs: BrowserSession | None, to: str) -> str | None:
        """The id WhatsApp answered with for ``to`` (``<digits>@c.us``) when the session's page
        last opened its chat; None when unknown."""
        return bs.page.recipients.get(to) if bs is not None else None

    def _media_dir(self) -> Path:
        path = Path(self.settings.browser_work_dir) / "media"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _media_file(self, item: dict, dest: Path) -> Media:
        """One attachment as a file in ``dest``: a URL downloaded, an inline file read from
        the media store by its reference (``{"ref", "filename", "mimetype", "sha256"}``), or
        base64 (rows from before inline media were stored). Raises MediaUnavailable:
        permanent for an object expired or gone, transient when the store does not answer."""
        try:
            if item.get("url"):
                return fetch_media(item["url"], dest, limits=self.media_limits, allow=self.media_allow)
            if item.get("ref"):
                return media_from_bytes(item.get("filename") or "file", item.get("mimetype") or "",
                                        self._stored(item), dest, self.media_limits)
            return media_from_base64(item.get("filename") or "file", item.get("mimetype") or "",
                                     item.get("data") or "", dest, self.media_limits)
        except MediaError as exc:
            raise MediaUnavailable(exc) from exc

    def _stored(self, item: dict) -> bytes:
        name = item.get("filename") or "file"
        try:
            return self.media_store.get(item["ref"], item.get("sha256"))
        except MediaExpired as exc:
            log.warning("media %s not sent: %s", item["ref"], exc)
            hours = self.settings.media_ttl_hours
            raise MediaError(f"Media {name} expired (inline files are kept {hours:g} h): send it again",
                             permanent=True) from None
        except MediaStoreError as exc:
            log.warning("media %s not read: %s", item["ref"], exc)
            raise MediaError(f"Media {name} could not be read from the media store", permanent=False) from None
