"""Tasks that need a browser. They run only on slot workers (queue ``slot.<name>``).

Thin shells: the work is in ``workers.slot.SlotRuntime`` and ``browser.whatsapp``.
Each task is safe to run twice: initialize is a no-op for a running browser of the
same placement, and a send that already happened is marked in Redis (in the same
MULTI as its "sent" event) so a redelivered task does not send again.
"""
from __future__ import annotations

import logging
import random

from selenium.common.exceptions import WebDriverException

from browser.whatsapp import PairingError, SendError
from models.states import MessageStatus
from workers.app import celery
from workers.slot import DONE_TTL, SessionOffline, runtime

log = logging.getLogger("slot.tasks")


def done_key(message_id: str) -> str:
    return f"wa:msg:{message_id}:sent"


def backoff_seconds(retries: int, base: float = 2.0, cap: float = 60.0) -> float:
    """Exponential backoff with full jitter."""
    return random.uniform(0, min(cap, base * (2 ** retries)))


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
        log.info("session=%s pairing code refused: %s", session_id, exc)
        rt.bus.notify_session(session_id, {"type": "pairing_error", "epoch": epoch, "error": str(exc)})


@celery.task(name="wa.slot.send_message", bind=True, max_retries=None)
def send_message(self, message_id: str, job_id: str, session_id: str, epoch: int, to: str, text: str,
                 media: list[dict] | None = None) -> None:
    rt = runtime()
    bus = rt.bus
    attempt = self.request.retries + 1
    last_attempt = self.request.retries >= rt.settings.task_max_retries - 1
    if rt.redis.exists(done_key(message_id)):
        log.info("message=%s already sent; redelivery ignored", message_id)
        return

    def fail(error: str) -> None:
        log.info("message=%s session=%s failed: %s", message_id, session_id, error)
        bus.message(message_id, job_id, session_id, MessageStatus.FAILED, attempt=attempt, error=error)

    try:
        rt.session_for_send(session_id, epoch)
    except LookupError as exc:
        return fail(str(exc))
    except SessionOffline as exc:
        error = str(exc)
    else:
        bus.message(message_id, job_id, session_id, MessageStatus.SENDING, attempt=attempt)
        try:
            wa_id = rt.deliver(session_id, epoch, message_id, to, text, media)
        except LookupError as exc:
            return fail(str(exc))
        except SendError as exc:
            if exc.permanent or last_attempt:
                return fail(str(exc))
            error = str(exc)
        except SessionOffline as exc:
            error = str(exc)
        except WebDriverException as exc:
            if last_attempt:
                return fail(f"Browser error: {exc.msg}")
            error = exc.msg
        else:
            bus.message(message_id, job_id, session_id, MessageStatus.SENT, attempt=attempt,
                        wa_message_id=wa_id, mark_key=done_key(message_id), mark_ttl=DONE_TTL)
            rt.watch_acks(session_id, wa_id, message_id, job_id, to)
            log.info("message=%s session=%s sent as %s", message_id, session_id, wa_id)
            return
    if last_attempt:
        return fail(error)
    log.info("message=%s attempt %d failed (%s); retrying", message_id, attempt, error)
    raise self.retry(countdown=backoff_seconds(self.request.retries),
                     queue=self.request.delivery_info.get("routing_key"))
