"""The state rules, without a database."""
from models.states import (
    JobStatus,
    MessageStatus as M,
    SessionStatus as S,
    job_status,
    message_transition_allowed,
    session_event_is_fresh,
    session_transition_allowed,
)


def test_session_happy_path_is_allowed():
    path = [S.INITIALIZING, S.QR_READY, S.QR_READY, S.AUTHENTICATED, S.READY, S.DISCONNECTED, S.INITIALIZING]
    for current, new in zip(path, path[1:]):
        assert session_transition_allowed(current, new), (current, new)


def test_session_illegal_transitions_are_refused():
    assert not session_transition_allowed(S.READY, S.QR_READY)
    assert not session_transition_allowed(S.READY, S.AUTHENTICATED)
    assert not session_transition_allowed(S.DESTROYED, S.READY)
    assert not session_transition_allowed(S.DISCONNECTED, S.READY)
    assert not session_transition_allowed(S.DISCONNECTED, S.READY, "BROWSER_CRASHED")


def test_a_page_that_lost_its_connection_comes_back_ready():
    assert session_transition_allowed(S.READY, S.DISCONNECTED)
    assert session_transition_allowed(S.DISCONNECTED, S.READY, "CONNECTION_LOST")
    # A kept browser whose stored login turned out revoked shows a QR again.
    assert session_transition_allowed(S.DISCONNECTED, S.QR_READY, "BROWSER_RESTARTING")
    assert not session_transition_allowed(S.DISCONNECTED, S.QR_READY, "LOGOUT")


def test_stale_session_events_are_refused():
    assert session_event_is_fresh(5, "100-1", 5, "100-2")
    assert session_event_is_fresh(5, None, 5, "1-0")
    assert not session_event_is_fresh(5, "100-2", 5, "100-1"), "older stream id"
    assert not session_event_is_fresh(5, "100-2", 5, "100-2"), "replayed"
    assert not session_event_is_fresh(6, None, 5, "200-0"), "older placement"
    assert session_event_is_fresh(5, "99-9", 5, "100-0"), "ids compare as numbers"
    assert not session_event_is_fresh(5, "1000-0", 5, "999-0"), "not as strings"


def test_message_moves_forward_only():
    assert message_transition_allowed(M.QUEUED, M.SENDING)
    assert message_transition_allowed(M.SENDING, M.SENDING)
    assert message_transition_allowed(M.SENDING, M.SENT)
    assert message_transition_allowed(M.SENT, M.READ)
    assert not message_transition_allowed(M.READ, M.DELIVERED)
    assert not message_transition_allowed(M.SENT, M.SENDING)
    assert not message_transition_allowed(M.SENT, M.FAILED)
    assert not message_transition_allowed(M.FAILED, M.SENT)
    assert message_transition_allowed(M.QUEUED, M.CANCELLED)
    assert not message_transition_allowed(M.SENDING, M.CANCELLED)


def test_job_status_follows_messages():
    assert job_status([M.QUEUED, M.QUEUED]) == JobStatus.QUEUED
    assert job_status([M.SENT, M.QUEUED]) == JobStatus.PROCESSING
    assert job_status([M.SENT, M.FAILED]) == JobStatus.COMPLETED
    assert job_status([M.FAILED, M.FAILED]) == JobStatus.FAILED
    assert job_status([M.CANCELLED]) == JobStatus.CANCELLED


def test_every_event_round_trips_through_its_one_serialisation():
    """models/events.py: to_dict/encode and decode are each other's inverse; enums stay enums;
    a field a newer worker added is ignored; the bus refuses a reason outside the enum."""
    import pytest

    from models.events import (EVENT_TYPES, IncomingMessageEvent, MessageEvent, SessionBackup, SessionEvent,
                               SessionNotice, SessionRestriction, SlotStarted, decode)
    from models.states import DisconnectReason, MessageStatus, SessionStatus

    events = [
        SessionEvent(session_id="s", epoch=3, status=SessionStatus.DISCONNECTED, reason=DisconnectReason.LOGOUT),
        MessageEvent(message_id="m", job_id="j", session_id="s", status=MessageStatus.SCHEDULED, attempt=2,
                     wait_reason="pacing", next_attempt_at="2026-11-30T10:00:00+00:00"),
        SlotStarted(slot="slot-1", started_ms=1_796_000_000_000),
        SessionBackup(session_id="s", epoch=3, key="sessions/s/v1.tar.gz"),
        SessionNotice(session_id="s", epoch=3, kind="unknown_dialog", text="?", buttons=["OK"]),
        SessionRestriction(session_id="s", epoch=3, kind="temporary_ban", restricted=True,
                           reason="restricted: temporary ban"),
        IncomingMessageEvent(session_id="s", epoch=3, wa_message_id="3A01", received_at="2026-11-30T10:00:00+00:00",
                             sender_wa_id="123@lid", msg_type="image", media_size=1024, quoted_wa_message_id="3EB0AA"),
    ]
    assert {e.type for e in events} == set(EVENT_TYPES)
    for event in events:
        assert decode(event.encode()) == event
        assert "None" not in event.encode()
    newer = '{"type": "slot_started", "slot": "x", "started_ms": 1, "at": "2026-11-30T10:00:00+00:00", "gpu": 1}'
    assert decode(newer) == SlotStarted(slot="x", started_ms=1, at="2026-11-30T10:00:00+00:00")
    assert decode(events[0].encode()).reason is DisconnectReason.LOGOUT
    with pytest.raises(ValueError):
        decode('{"type": "session", "session_id": "s", "epoch": 1, "status": "SLEEPING"}')
