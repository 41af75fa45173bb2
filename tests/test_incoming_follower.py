"""The slot's incoming follower without a browser: which chat-list changes are new messages,
and that a restarted follower (same Redis) does not report what it saw before."""
from __future__ import annotations

from browser.whatsapp import ChatPreview, Inbox, Incoming, read_inbox
from workers.browser_session import BrowserSession
from workers.incoming import IncomingFollower, dom_changes


class Bus:
    def __init__(self):
        self.events = []

    def incoming(self, event):
        self.events.append(event)


def chat(phone: str, unread: int, text: str, ours: bool = False) -> ChatPreview:
    return ChatPreview(phone, f"+{phone}", unread, text, ours)


def test_chat_list_changes_that_are_new_messages():
    before = {"919800000001": {"unread": 1, "text": "hi", "n": 1}, "919800000002": {"unread": 0, "text": "ok", "n": 0},
              "919800000003": {"unread": 0, "text": "sent by us", "n": 0}}
    after, new = dom_changes(before, (
        chat("919800000001", 2, "hi"),  # the same text again: the count grew
        chat("919800000002", 0, "and now?"),  # the open chat: read at once, its preview changed
        chat("919800000003", 0, "another of ours", ours=True),  # ours: no
        chat("919800000004", 1, "new chat"),  # a chat that came into the list
        chat("919800000005", 0, "ours first", ours=True),
    ))
    assert [(name, n) for name, _chat, n in new] == [("919800000001", 2), ("919800000002", 1), ("919800000004", 1)]
    assert after["919800000001"] == {"unread": 2, "text": "hi", "n": 2}
    assert dom_changes(after, (chat("919800000001", 2, "hi"),))[1] == []  # nothing changed: nothing new


def test_a_restarted_follower_reports_nothing_twice(redis_client, user_id):
    rows = (chat("919800000001", 1, "old"),)
    first = IncomingFollower(redis_client, Bus())
    bs = BrowserSession(session_id=user_id, epoch=1, page=None)
    first.request(bs)
    assert first.follow(bs, Inbox("dom", chats=rows)) == 0  # the first look takes note only: history
    assert first.follow(bs, Inbox("dom", chats=(chat("919800000001", 2, "new one"),))) == 1
    again = IncomingFollower(redis_client, Bus())  # a restarted slot, same Redis
    bs2 = BrowserSession(session_id=user_id, epoch=2, page=None)
    assert again.follow(bs2, Inbox("dom", chats=(chat("919800000001", 2, "new one"),))) == 0
    msg = Incoming("false_1@lid_3A01", "3A01", "1@lid", None, "chat", "hi", t=1.0)
    assert again.follow(bs2, Inbox("modules", messages=(msg, msg))) == 1 and bs2.inbox_done == [msg.serialized] * 2
    assert again.follow(bs2, Inbox("modules", messages=(msg,))) == 0  # still queued in the page: taken once
    redis_client.delete(f"wa:incoming:{user_id}")


def test_the_probe_answer_is_read_into_an_inbox():
    inbox = read_inbox({"route": "modules", "messages": [
        {"id": "false_123@lid_3A02", "key": "3A02", "from": "123@lid", "phone": "919800000001", "type": "image",
         "body": "cap", "mimetype": "image/png", "filename": "a.png", "size": 10, "quoted": "true_123@lid_3EB0AA",
         "t": 1700000000}]})
    [m] = inbox.messages
    assert (m.sender_number, m.quoted_key, m.size, m.t) == ("919800000001", "3EB0AA", 10, 1700000000.0)
    assert read_inbox(None) is None
