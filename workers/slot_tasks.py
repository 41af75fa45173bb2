"""Tasks that need a browser. They run only on slot workers (queue ``slot.<name>``).

Thin shells: the work is in ``workers.slot.SlotRuntime`` and ``browser.whatsapp``.
Each task is safe to run twice: initialize is a no-op for a running browser of the
same placement, and a send that already happened is marked in Redis (in the same
MULTI as its "sent" event) so a redelivered task does not send again.
"""
from __future__ import annotations

import logging
import random
import re
import time
from datetime import datetime, timezone

from selenium.common.exceptions import WebDriverException

from browser.whatsapp import PairingError, SendError, UnconfirmedSend, message_key
from models.states import MessageStatus
from workers.app import celery
from settings import slot_queue
from workers.pacing import Claims, PacingPolicy
from workers.slot import DONE_TTL, SessionOffline, runtime

log = logging.getLogger("slot.tasks")


def done_key(message_id: str) -> str:
    return f"wa:msg:{message_id}:sent"


def backoff_seconds(attempt: int, base: float = 2.0, cap: float = 60.0) -> float:
    """Exponential backoff with full jitter, after attempt ``attempt`` (1, 2, ...)."""
    return random.uniform(base / 2, min(cap, base * (2 ** attempt)))


@celery.task(name="wa.slot.initialize")
def initialize(session_id: str, epoch: int) -> None:
    runtime().initialize(session_id, epoch)


@celery.task(name="wa.slot.stop_session")
def stop_session(session_id: str, epoch: int, forget: bool = False) -> None:
    runtime().stop(session_id, epoch, forget)


@celery.task(name="wa.slot.request_pairing_code")
def request_pairing_code(session_id: str, epoch: int, phone: str) -> None:
    """The code goes out as a QR_READY event with ``pairing_code``; a refusal as a live notice."""
    rt = runtime()
    try:
        rt.request_pairing_code(session_id, epoch, phone)
    except (LookupError, PairingError) as exc:
        log.info("session=%s pairing code refused: %s", session_id, redact_numbers(str(exc)))
        rt.bus.notify_session(session_id, {"type": "pairing_error", "epoch": epoch, "error": str(exc)})
    except WebDriverException as exc:  # the page moved under the driver: the caller may ask again
        log.warning("session=%s pairing code not read: %s", session_id, (exc.msg or "")[:200])
        rt.bus.notify_session(session_id, {"type": "pairing_error", "epoch": epoch,
                                           "error": "The page did not show a pairing code. Please try again."})


# Waits up to this long are held by the worker as a countdown; longer ones end the task
# and the sweeper dispatches the message when it is due (the database holds the time).
COUNTDOWN_MAX = 300.0
SHORT_WAIT = 0.5


@celery.task(name="wa.slot.send_message", bind=True, max_retries=None)
def send_message(self, message_id: str, job_id: str, session_id: str, epoch: int, to: str, text: str,
                 media: list[dict] | None = None, pacing: dict | None = None, attempt: int = 1) -> None:
    """Send one message: in its session's pace, once, with retries for transient failures.

    A task that finds its session not here (another placement, a restarted slot) ends
    without a word: the message stays in the database and the sweeper dispatches it
    again to wherever the session is READY.
    """
    rt = runtime()
    settings, bus = rt.settings, rt.bus
    if rt.redis.exists(done_key(message_id)):
        log.info("message=%s already sent; redelivery ignored", message_id)
        return
    args = dict(message_id=message_id, job_id=job_id, session_id=session_id, epoch=epoch, to=to, text=text,
                media=media, pacing=pacing, attempt=attempt)

    def later(at: float, reason: str, **changes) -> None:
        """Wait (status scheduled) and come back at ``at``, here or through the sweeper."""
        wait = max(0.0, at - time.time())
        countdown = wait <= COUNTDOWN_MAX
        bus.message(message_id, job_id, session_id, MessageStatus.SCHEDULED, attempt=attempt,
                    next_attempt_at=iso(at), wait_reason=reason,
                    dispatch_at=iso(at + settings.dispatch_grace_seconds if countdown else at))
        if countdown:
            raise self.retry(countdown=wait, kwargs={**args, **changes}, queue=slot_queue(settings.slot_name))

    def fail(error: str) -> None:
        log.info("message=%s session=%s failed: %s", message_id, session_id, redact_numbers(error))
        rt.pacer.release(session_id, message_id)
        bus.message(message_id, job_id, session_id, MessageStatus.FAILED, attempt=attempt, error=error)

    try:
        rt.session_for_send(session_id, epoch)
    except LookupError as exc:
        log.info("message=%s session=%s not sendable here (%s); left to the sweeper", message_id, session_id, exc)
        return
    except SessionOffline:
        return later(time.time() + backoff_seconds(attempt, base=5.0, cap=30.0) + 2.0, "offline")

    open_until = rt.breaker.open_until(session_id)
    if open_until:
        return later(open_until, "circuit open: too many failures in a row")

    policy = PacingPolicy.from_dict(pacing, rt.default_pacing)
    reserved = rt.pacer.reserve(session_id, message_id, policy)
    if reserved.at - time.time() > SHORT_WAIT:
        return later(reserved.at, PACING_REASONS.get(reserved.reason, reserved.reason))
    # The gap counts from the last send the server confirmed, not from its reservation.
    gap_left = rt.pacer.last_sent(session_id) + policy.min_gap - time.time()
    if gap_left > 0:
        time.sleep(min(gap_left, policy.max_gap))

    holder = rt.claim_holder(self.request.id or message_id)
    lease = settings.send_timeout * 2 + (settings.media_fetch_timeout if media else 0)
    current = rt.claims.take(message_id, holder, lease=lease, dead=rt.claim_is_dead)
    if current == Claims.CANCELLED:
        log.info("message=%s was cancelled", message_id)
        rt.pacer.release(session_id, message_id)
        return
    if current is not None:  # another copy of this task is sending it right now
        return later(time.time() + settings.send_timeout, "another attempt is in progress")

    bus.message(message_id, job_id, session_id, MessageStatus.SENDING, attempt=attempt,
                dispatch_at=iso(time.time() + settings.send_timeout * 3 + settings.dispatch_grace_seconds))
    try:
        wa_id = rt.deliver(session_id, epoch, message_id, to, text, media, resume=True)
    except LookupError as exc:
        rt.claims.release(message_id, holder)
        log.info("message=%s session=%s went away (%s); left to the sweeper", message_id, session_id, exc)
        return
    except SessionOffline:
        rt.claims.release(message_id, holder)
        return later(time.time() + backoff_seconds(attempt, base=5.0, cap=30.0) + 2.0, "offline")
    except (SendError, WebDriverException) as exc:
        rt.claims.release(message_id, holder)
        permanent = isinstance(exc, SendError) and exc.permanent
        error = str(exc) if isinstance(exc, SendError) else f"Browser error: {exc.msg}"
        if not permanent:
            rt.breaker.failure(session_id)
        # An unconfirmed send may be out: one more attempt looks in the chat before giving up.
        last = settings.task_max_retries + (1 if isinstance(exc, UnconfirmedSend) else 0)
        if permanent or attempt >= last:
            return fail(error)
        log.info("message=%s attempt %d failed (%s); retrying", message_id, attempt, redact_numbers(error))
        return later(time.time() + backoff_seconds(attempt), f"retrying after: {error}", attempt=attempt + 1)
    rt.pacer.mark_sent(session_id)
    rt.pacer.forget(session_id, message_id)
    rt.breaker.success(session_id)
    recipient = rt.recipient_wid(session_id, to)  # what WhatsApp's existence query answered
    bus.message(message_id, job_id, session_id, MessageStatus.SENT, attempt=attempt,
                wa_message_id=wa_id, wa_id=recipient, mark_key=done_key(message_id), mark_ttl=DONE_TTL)
    rt.watch_acks(session_id, wa_id, message_id, job_id, (recipient or to).split("@", 1)[0])
    log.info("message=%s session=%s sent as %s", message_id, session_id, message_key(wa_id))


PACING_REASONS = {"gap": "pacing: gap between sends", "hourly": "pacing: hourly cap reached",
                  "daily": "pacing: daily cap reached", "held": "pacing", "now": "pacing"}


def redact_numbers(text: str) -> str:
    """An error for the log: runs of 7 or more digits (phone numbers) masked; the caller's
    copy (job results, webhooks) keeps them."""
    return re.sub(r"\d{7,}", lambda m: m.group()[:2] + "…" + m.group()[-2:], text or "")


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat()
