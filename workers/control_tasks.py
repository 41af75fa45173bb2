"""Tasks that need no browser. They run on the control worker (queue ``control``),
mostly on beat's schedule.
"""
from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import delete, select, update

from messaging import dispatch, slots
from messaging.optouts import OptOutMirror
from messaging.pacing import Pacer, PacingPolicy
from messaging.recovery import recover, recoverable
from models import IdempotencyKey, Message, MessageStatus, OptOut, SessionStatus, WhatsAppSession, utcnow
from models.recording import change_message_status, change_session_status
from models.states import LIVE_SESSION_STATES, MESSAGE_UNSENT
from models.tables import placed_and_live
from workers import wiring
from workers.app import celery
from workers.wiring import ControlWiring

log = logging.getLogger("control")



def resources() -> ControlWiring:
    """This worker process's wiring (``workers.wiring``): settings, database, Redis, Celery."""
    return wiring.control(celery)


# Set once per life of a Redis: while it is there, Redis holds what restore_lost_state() puts back.
STATE_MARK = "wa:state:restored"


def restore_lost_state(w: ControlWiring) -> bool:
    """Put back what a Redis that restarted empty lost and PostgreSQL can tell, once per
    life of a Redis (``STATE_MARK``; a new Redis gets the same, harmlessly): each
    session's pacing (its sends of the last day count in its caps again, the next send
    keeps its gap), the tasks of unsent messages (due now: a copy that survived finds its
    message reserved, claimed or done), the slots' copy of the opt-out lists, and the
    initialize tasks of sessions placed but not started. Browsers, their sessions and the slots' registration are the slot
    workers' own: they kept them and register again at their next heartbeat.
    Returns whether it ran."""
    settings, db, client = w.settings, w.db, w.redis
    if not client.set(STATE_MARK, utcnow().isoformat(), nx=True):
        return False
    try:
        now = utcnow()
        default = PacingPolicy(settings.pacing_min_gap, settings.pacing_max_gap, settings.hourly_cap,
                               settings.daily_cap)
        pacer = Pacer(client)
        with db.begin() as s:
            sent: dict[str, dict[str, float]] = {}
            for session_id, message_id, sent_at in s.execute(
                    select(Message.session_id, Message.id, Message.sent_at)
                    .where(Message.sent_at >= now - timedelta(days=1))):
                sent.setdefault(session_id, {})[message_id] = sent_at.timestamp()
            pacing = dict(s.execute(select(WhatsAppSession.session_id, WhatsAppSession.pacing)
                                    .where(WhatsAppSession.session_id.in_(list(sent)))).all())
            for session_id, times in sent.items():
                pacer.rebuild(session_id, times, PacingPolicy.from_dict(pacing.get(session_id), default))
            due = s.execute(update(Message).where(
                Message.status.in_([m.value for m in MESSAGE_UNSENT]), Message.dispatch_due_at > now)
                .values(dispatch_due_at=now)).rowcount
            starting = s.execute(select(WhatsAppSession.slot, WhatsAppSession.session_id, WhatsAppSession.epoch)
                                 .where(WhatsAppSession.status == SessionStatus.INITIALIZING.value,
                                        WhatsAppSession.slot.is_not(None))).all()
            opted_out = s.execute(select(OptOut.session_id, OptOut.number)).all()
        mirror = OptOutMirror(client)
        for session_id, number in opted_out:
            mirror.add(session_id, number)
        for slot, session_id, epoch in starting:
            dispatch.initialize_session(w.celery, slot=slot, session_id=session_id, epoch=epoch)
    except Exception:
        client.delete(STATE_MARK)  # the next sweep tries again
        raise
    log.warning("Redis held none of this service's state (restarted empty, or new): put back the pacing of "
                "%d sessions from PostgreSQL, %d unsent messages due now, %d opt-outs, %d sessions started again",
                len(sent), due, len(opted_out), len(starting))
    return True


@celery.task(name="wa.control.sweep_messages")
def sweep_messages(limit: int = 500) -> int:
    """Dispatch the unsent messages whose dispatch is due: accepted while Redis was down,
    waiting for their time (pacing, a cap, a retry), released by the message before them
    to the same recipient, or whose task was lost with a dead worker or an emptied Redis
    (``restore_lost_state`` first). Sending twice is prevented on the slot (done marker,
    claim, and a look at the chat)."""
    w = resources()
    settings, db = w.settings, w.db
    restore_lost_state(w)
    now = utcnow()
    max_age = timedelta(hours=settings.message_max_age_hours)
    count = 0
    with db.begin() as s:
        rows = s.execute(
            select(Message, WhatsAppSession)
            .outerjoin(WhatsAppSession, WhatsAppSession.session_id == Message.session_id)
            .where(Message.status.in_([m.value for m in MESSAGE_UNSENT]), Message.dispatch_due_at < now)
            .order_by(Message.created_at).limit(limit).with_for_update(of=Message, skip_locked=True)
        ).all()
        for msg, session in rows:
            if session is None:
                change_message_status(s, msg, MessageStatus.FAILED, error="Session not found")
                continue
            if now - msg.created_at > max_age:
                change_message_status(s, msg, MessageStatus.FAILED,
                                      error=f"Not sent within {settings.message_max_age_hours:g} h: "
                                            f"the session was not ready")
                continue
            if msg.after_message_id and predecessor_unsent(s, msg.after_message_id):
                msg.dispatch_due_at = None  # the message before it releases it when it is done
                continue
            msg.dispatch_due_at = now + timedelta(seconds=settings.dispatch_grace_seconds)
            if session.status != SessionStatus.READY.value or not session.slot:
                continue  # waits for the session to come back
            earlier = earlier_dispatch(s, msg)
            msg.dispatched_at = msg.dispatched_at or now
            dispatch.send_message(w.celery, slot=session.slot, message_id=msg.id, job_id=msg.job_id,
                                  session_id=msg.session_id, epoch=session.epoch, to=msg.to, text=msg.text,
                                  media=msg.media, pacing=session.pacing, earlier=earlier,
                                  mark_chat_read=bool(msg.mark_chat_read),
                                  first_dispatch=msg.dispatched_at.timestamp(),
                                  # an attempt cut short by a dead worker counts
                                  attempt=msg.attempts + 1 if msg.status == MessageStatus.SENDING else
                                  max(1, msg.attempts))
            count += 1
    if count:
        log.info("dispatched %d due messages", count)
    return count


def earlier_dispatch(s, msg: Message) -> dict | None:
    """What PostgreSQL knows of a message dispatched before and never confirmed: the time of
    its first dispatch and the newest message of the session to the same number recorded
    as sent. The slot looks for the message in the chat from there before sending it: the
    "sent" news of an earlier attempt may have been lost with Redis. None for a message
    never dispatched."""
    if msg.dispatched_at is None:
        return None
    after_id = s.execute(
        select(Message.wa_message_id)
        .where(Message.session_id == msg.session_id, Message.to == msg.to, Message.id != msg.id,
               Message.sent_at.is_not(None), Message.wa_message_id.is_not(None))
        .order_by(Message.sent_at.desc()).limit(1)
    ).scalar_one_or_none()
    return {"since": msg.dispatched_at.timestamp(), "after_id": after_id}


def predecessor_unsent(s, message_id: str) -> bool:
    """Whether the message ``message_id`` (the one a message waits behind) still exists and
    is not sent yet; ``s``: a database session."""
    status = s.execute(select(Message.status).where(Message.id == message_id)).scalar_one_or_none()
    return status is not None and MessageStatus(status) in MESSAGE_UNSENT


@celery.task(name="wa.control.expire_idempotency_keys")
def expire_idempotency_keys() -> int:
    """Idempotency-Keys are kept IDEMPOTENCY_HOURS (24 h by default), then forgotten."""
    with resources().db.begin() as s:
        count = s.execute(delete(IdempotencyKey).where(IdempotencyKey.expires_at < utcnow())).rowcount
    if count:
        log.info("forgot %d expired idempotency keys", count)
    return count


@celery.task(name="wa.control.expire_media")
def expire_media() -> int:
    """Inline media are kept MEDIA_TTL_HOURS (48 h by default) after their send was
    accepted, then deleted from the media store; returns how many objects went."""
    count = resources().media_store.expire()
    if count:
        log.info("deleted %d expired inline media", count)
    return count


@celery.task(name="wa.control.reap_lost_slots")
def reap_lost_slots() -> int:
    """Sessions placed on a slot that stopped heartbeating are DISCONNECTED (WORKER_LOST);
    with AUTO_RECOVER (the default) they are placed on another slot at once.

    A slot is judged only after the registry has been watched without a break for a whole
    SLOT_HEARTBEAT_TTL: after a Redis outage (or a Redis restarted empty) a live slot's
    key is missing until its next heartbeat, and its sessions must keep their browsers."""
    w = resources()
    settings, db, client = w.settings, w.db, w.redis
    ttl = settings.slot_heartbeat_ttl
    every = float(w.celery.conf.beat_schedule["reap-lost-slots"]["schedule"])  # a missed run is no break
    watched = slots.watched_for(client, max_gap=ttl + 2 * every)
    if watched < ttl:
        log.info("slot registry watched for %.0f s of %d s since a break (a Redis outage or restart, or "
                 "no reaper ran): no slot is judged lost yet", watched, ttl)
        return 0
    live = {slot.name for slot in slots.live_slots(client)}
    count = 0
    with db.begin() as s:
        rows = s.execute(
            select(WhatsAppSession).where(placed_and_live()).with_for_update(skip_locked=True)
        ).scalars().all()
        for row in rows:
            if row.slot not in live:
                change_session_status(s, row, SessionStatus.DISCONNECTED, reason="WORKER_LOST", source="control")
                count += 1
    if count:
        log.warning("%d sessions lost their slot", count)
    if settings.auto_recover:
        recover_sessions()
    return count


@celery.task(name="wa.control.recover_sessions")
def recover_sessions() -> int:
    """Sessions whose worker died, restarted or stopped are placed again (failover, and
    recovery after a redeploy); their login comes back from the profile store."""
    w = resources()
    if not w.settings.auto_recover:
        return 0
    placed, failed = recover(w.db, w.redis, w.celery, recoverable(), reason="FAILOVER")
    for session_id, why in failed:
        log.warning("session=%s not recovered: %s", session_id, why)
    return len(placed)


@celery.task(name="wa.control.clean_sessions")
def clean_sessions() -> dict:
    """Maintenance on beat: browsers nobody owns are stopped, sessions stuck logging in are
    stopped, and (with IDLE_TIMEOUT_MINUTES) idle READY sessions are stopped to free their
    slot, their login saved so that initialize brings them back without a QR."""
    w = resources()
    settings, db, client = w.settings, w.db, w.redis
    now = utcnow()
    live = slots.live_slots(client)
    stops: list[tuple[str, str, int, bool]] = []  # (slot, session, epoch, forget)
    counts = {"orphans": 0, "stuck": 0, "idle": 0}
    with db.begin() as s:
        rows = {r.session_id: r for r in s.execute(select(WhatsAppSession).where(
            WhatsAppSession.session_id.in_([sid for slot in live for sid in slot.sessions]))).scalars()}
        for slot in live:
            for session_id in slot.sessions:
                row = rows.get(session_id)
                if row is None or row.slot != slot.name or row.status not in LIVE_STATUS_VALUES:
                    # Any epoch it runs with is older than this one: the browser closes.
                    stops.append((slot.name, session_id, ORPHAN_EPOCH, row is None))
                    counts["orphans"] += 1
        stuck_before = int((now.timestamp() - settings.stuck_timeout_seconds) * 1000)
        for row in s.execute(select(WhatsAppSession).where(
                WhatsAppSession.status.in_([SessionStatus.INITIALIZING.value, SessionStatus.QR_READY.value]),
                WhatsAppSession.slot.is_not(None), WhatsAppSession.epoch < stuck_before)
                .with_for_update(skip_locked=True)).scalars():
            change_session_status(s, row, SessionStatus.DISCONNECTED, reason="STUCK", source="control")
            stops.append((row.slot, row.session_id, row.epoch, False))
            counts["stuck"] += 1
        if settings.idle_timeout_minutes > 0:
            idle_before = now - timedelta(minutes=settings.idle_timeout_minutes)
            for row in s.execute(select(WhatsAppSession).where(
                    WhatsAppSession.status == SessionStatus.READY.value, WhatsAppSession.slot.is_not(None),
                    WhatsAppSession.last_activity < idle_before).with_for_update(skip_locked=True)).scalars():
                change_session_status(s, row, SessionStatus.DISCONNECTED, reason="IDLE", source="control")
                stops.append((row.slot, row.session_id, row.epoch, False))
                counts["idle"] += 1
    for slot, session_id, epoch, forget in stops:
        dispatch.stop_session(w.celery, slot=slot, session_id=session_id, epoch=epoch, forget=forget)
    if any(counts.values()):
        log.info("cleanup: %s", counts)
    return counts


ORPHAN_EPOCH = 2**62  # newer than any placement: a stop with it closes whatever runs
LIVE_STATUS_VALUES = frozenset(s.value for s in LIVE_SESSION_STATES) | {SessionStatus.DISCONNECTED.value}
