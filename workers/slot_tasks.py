"""Tasks that need a browser. They run only on slot workers (queue ``slot.<name>``).

Thin shells: the work is in ``workers.slot_runtime.SlotRuntime`` and ``browser.whatsapp``.
Each task is safe to run twice: initialize is a no-op for a running browser of the
same placement, and a send that already happened is marked in Redis (in the same
MULTI as its "sent" event) so a redelivered task does not send again; should Redis have
forgotten it, a redelivered task looks in the chat first (``send_rules.earlier_attempts``).
"""
from __future__ import annotations

import logging
import re
import time
from datetime import datetime, timezone

from selenium.common.exceptions import WebDriverException

from browser.whatsapp import PairingError, SendError, SendRestricted, UnconfirmedSend, message_key
from messaging.pacing import Claims, PacingPolicy
from models.optouts import OPTED_OUT
from models.states import MessageStatus
from settings import slot_queue
from workers import send_rules as rules, wiring
from workers.app import celery
from workers.browser_session import SessionOffline
from workers.send_rules import Outcome
from workers.slot_runtime import SlotRuntime

log = logging.getLogger("slot.tasks")


def runtime() -> SlotRuntime:
    """This slot worker's runtime (``workers.wiring``), built and started on first use."""
    return wiring.slot(celery)


DONE_TTL = 7 * 24 * 3600  # seconds the "sent" marker of a message is kept


def done_key(message_id: str) -> str:
    """Set with the message's ``sent`` event, in the same MULTI: a redelivered task ends at once."""
    return f"wa:msg:{message_id}:sent"


@celery.task(name="wa.slot.initialize")
def initialize(session_id: str, epoch: int) -> None:
    """Start the session's browser on this slot (``SlotRuntime.initialize``)."""
    runtime().initialize(session_id, epoch)


@celery.task(name="wa.slot.stop_session")
def stop_session(session_id: str, epoch: int, forget: bool = False) -> None:
    """Stop the session's browser on this slot (``SlotRuntime.stop``)."""
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


def outcome_of(exc: Exception) -> tuple[Outcome, str]:
    """How a failed attempt ended, and its error as the caller sees it."""
    if isinstance(exc, LookupError):
        return Outcome.GONE, str(exc)
    if isinstance(exc, SessionOffline):
        return Outcome.OFFLINE, str(exc)
    if isinstance(exc, SendRestricted):
        return Outcome.RESTRICTED, str(exc)
    if isinstance(exc, SendError):
        if exc.permanent:
            return Outcome.PERMANENT, str(exc)
        return (Outcome.UNCONFIRMED if isinstance(exc, UnconfirmedSend) else Outcome.TRANSIENT), str(exc)
    return Outcome.TRANSIENT, f"Browser error: {getattr(exc, 'msg', None) or exc}"


@celery.task(name="wa.slot.send_message", bind=True, max_retries=None)
def send_message(self, message_id: str, job_id: str, session_id: str, epoch: int, to: str, text: str,
                 media: list[dict] | None = None, pacing: dict | None = None, attempt: int = 1,
                 earlier: dict | None = None, mark_chat_read: bool = False, first_dispatch: float | None = None) -> None:
    """Send one message: in its session's pace, once, with retries for transient failures.

    A thin shell: it gathers the facts and carries out what ``workers.send_rules``
    decides. ``earlier`` (from the sweeper): what PostgreSQL knows of earlier dispatches
    of this message that were never confirmed; the message is then looked for in the
    chat before it is sent. ``first_dispatch``: the message's first dispatch (epoch
    seconds), carried from the first enqueue: a task the broker redelivers, or a retry of
    a run that reached the page, looks in the chat from then on before sending
    (``send_rules.earlier_attempts``), whatever Redis still remembers. A recipient on the
    session's opt-out list (which may have changed since the message was accepted) fails
    it at once, before the page is touched.
    ``mark_chat_read``: the chat is marked read once the message is out. A task that finds
    its session not here (another placement, a restarted slot) ends without a word: the
    message stays in the database and the sweeper dispatches it again to wherever the
    session is READY.
    """
    rt = runtime()
    settings, bus = rt.settings, rt.bus
    if rt.redis.exists(done_key(message_id)):
        log.info("message=%s already sent; redelivery ignored", message_id)
        return
    redelivered = bool((self.request.delivery_info or {}).get("redelivered"))
    earlier = rules.earlier_attempts(earlier=earlier, first_dispatch=first_dispatch, redelivered=redelivered)
    args = dict(message_id=message_id, job_id=job_id, session_id=session_id, epoch=epoch, to=to, text=text,
                media=media, pacing=pacing, attempt=attempt, earlier=earlier, mark_chat_read=mark_chat_read,
                first_dispatch=first_dispatch)
    reached_page = False  # a retry of a run that reached the page looks in the chat first

    def carry_out(decision: rules.Decision, holder: str | None = None) -> None:
        if holder is not None and not isinstance(decision, rules.Go):
            rt.claims.release(message_id, holder)
        if isinstance(decision, rules.Leave):
            log.info("message=%s session=%s left to the sweeper: %s", message_id, session_id, decision.why)
        elif isinstance(decision, rules.Cancelled):
            log.info("message=%s was cancelled", message_id)
            rt.pacer.release(session_id, message_id)
        elif isinstance(decision, rules.Fail):
            log.info("message=%s session=%s failed: %s", message_id, session_id, redact_numbers(decision.error))
            rt.pacer.release(session_id, message_id)
            bus.message(message_id, job_id, session_id, MessageStatus.FAILED, attempt=attempt, error=decision.error)
        elif isinstance(decision, rules.Wait):
            later(decision)

    def later(wait: rules.Wait) -> None:
        """Wait (status scheduled) and come back at ``wait.at``, here or through the sweeper."""
        if wait.reason.startswith(rules.RESTRICTED_PREFIX):
            rt.pacer.release(session_id, message_id)  # a paused session does not use its caps
        delay = max(0.0, wait.at - time.time())
        countdown = delay <= COUNTDOWN_MAX
        # A pacing wait is the normal course of a bulk send, not a retry: DEBUG. A failed
        # attempt said its own line; other holds (offline, restricted, breaker) are news.
        level = logging.DEBUG if rules.is_pacing(wait.reason) or wait.attempt else logging.INFO
        log.log(level, "message=%s waits %.1f s: %s", message_id, delay, redact_numbers(wait.reason))
        bus.message(message_id, job_id, session_id, MessageStatus.SCHEDULED, attempt=attempt,
                    next_attempt_at=iso(wait.at), wait_reason=wait.reason,
                    dispatch_at=iso(wait.at + settings.dispatch_grace_seconds if countdown else wait.at))
        if countdown:
            changes = {"attempt": wait.attempt} if wait.attempt else {}
            changes["earlier"] = rules.earlier_attempts(earlier=earlier, first_dispatch=first_dispatch,
                                                        attempted=reached_page)
            raise self.retry(countdown=delay, kwargs={**args, **changes}, queue=slot_queue(settings.slot_name))

    availability, restriction = rt.availability(session_id, epoch)
    policy = PacingPolicy.from_dict(pacing, rt.default_pacing)
    ready = availability == rules.Availability.READY
    open_until = rt.breaker.open_until(session_id) if ready else None
    reserved = rt.pacer.reserve(session_id, message_id, policy) if ready and not open_until else None
    now = time.time()
    decision = rules.before_send(
        now=now, attempt=attempt, availability=availability, restriction=restriction, breaker_open_until=open_until,
        reserved_at=reserved.at if reserved else now, reserved_reason=reserved.reason if reserved else "now",
        last_sent=rt.pacer.last_sent(session_id) if reserved else 0.0, min_gap=policy.min_gap,
        max_gap=policy.max_gap)
    if not isinstance(decision, rules.Go):
        return carry_out(decision)
    if decision.sleep:
        time.sleep(decision.sleep)

    holder = rt.claim_holder(self.request.id or message_id)
    lease = settings.send_timeout * 2 + (settings.media_fetch_timeout if media else 0)
    claim = rt.claims.take(message_id, holder, lease=lease, dead=rt.claim_is_dead)
    decision = rules.claim_decision(now=time.time(), claim=claim, cancelled_mark=Claims.CANCELLED,
                                    send_timeout=settings.send_timeout)
    if not isinstance(decision, rules.Go):
        return carry_out(decision)
    if rt.opt_outs.contains(session_id, to):  # opted out after the message was accepted
        return carry_out(rules.Fail(OPTED_OUT), holder)

    bus.message(message_id, job_id, session_id, MessageStatus.SENDING, attempt=attempt,
                dispatch_at=iso(time.time() + settings.send_timeout * 3 + settings.dispatch_grace_seconds))
    reached_page = True
    try:
        wa_id = rt.deliver(session_id, epoch, message_id, to, text, media, earlier=earlier)
    except (LookupError, SessionOffline, SendError, WebDriverException) as exc:
        outcome, error = outcome_of(exc)
        if outcome == rules.Outcome.RESTRICTED:
            bs = rt.sessions.get(session_id)
            restriction = rt.restrict(bs, exc.kind, source="send") if bs is not None else None
        if rules.counts_for_breaker(outcome):
            rt.breaker.failure(session_id)
        decision = rules.after_failure(now=time.time(), attempt=attempt, max_retries=settings.task_max_retries,
                                       outcome=outcome, error=error, restriction=restriction)
        if isinstance(decision, rules.Wait) and decision.attempt:
            log.info("message=%s attempt %d failed (%s); retrying", message_id, attempt, redact_numbers(error))
        return carry_out(decision, holder)
    rt.pacer.mark_sent(session_id)
    rt.pacer.forget(session_id, message_id)
    rt.breaker.success(session_id)
    recipient = rt.recipient_wid(session_id, to)  # what WhatsApp's existence query answered
    bus.message(message_id, job_id, session_id, MessageStatus.SENT, attempt=attempt,
                wa_message_id=wa_id, wa_id=recipient, mark_key=done_key(message_id), mark_ttl=DONE_TTL)
    rt.watch_acks(session_id, wa_id, message_id, job_id, (recipient or to).split("@", 1)[0])
    log.info("message=%s session=%s sent as %s", message_id, session_id, message_key(wa_id))
    if mark_chat_read:
        try:
            route = rt.checks.mark_read(session_id, epoch, to)
            log.info("message=%s chat marked read (%s)", message_id, route)
        except (LookupError, SessionOffline, SendError, WebDriverException) as exc:  # the message is out anyway
            log.warning("message=%s chat not marked read: %s", message_id, redact_numbers(str(exc)))


@celery.task(name="wa.slot.check_numbers")
def check_numbers(session_id: str, epoch: int, request_id: str, numbers: list[str]) -> None:
    """Whether each number is on WhatsApp (``NumberChecks.check``); the answers go out as a
    ``contacts_checked`` notice with ``request_id`` (the API waits for it)."""
    rt = runtime()
    notice = {"type": "contacts_checked", "request_id": request_id, "epoch": epoch}
    try:
        notice["results"] = rt.checks.check(session_id, epoch, numbers)
    except (LookupError, SessionOffline) as exc:
        notice.update(not_ready=True, error=str(exc))
    rt.bus.notify_session(session_id, notice)


@celery.task(name="wa.slot.mark_chat_read")
def mark_chat_read(session_id: str, epoch: int, request_id: str, phone: str) -> None:
    """Mark the chat with ``phone`` read; the outcome goes out as a ``chat_read`` notice
    with ``request_id`` (the API waits for it)."""
    rt = runtime()
    notice = {"type": "chat_read", "request_id": request_id, "epoch": epoch, "ok": False}
    try:
        notice.update(ok=True, route=rt.checks.mark_read(session_id, epoch, phone))
    except (LookupError, SessionOffline) as exc:
        notice.update(not_ready=True, error=str(exc))
    except (SendError, WebDriverException) as exc:
        log.info("session=%s chat not marked read: %s", session_id, redact_numbers(str(exc)))
        notice["error"] = str(getattr(exc, "msg", None) or exc)[:300]
    rt.bus.notify_session(session_id, notice)


def redact_numbers(text: str) -> str:
    """An error for the log: runs of 7 or more digits (phone numbers) masked; the caller's
    copy (job results, webhooks) keeps them."""
    return re.sub(r"\d{7,}", lambda m: m.group()[:2] + "…" + m.group()[-2:], text or "")


def iso(ts: float) -> str:
    """Epoch seconds as ISO 8601 in UTC."""
    return datetime.fromtimestamp(ts, timezone.utc).isoformat()
