"""How one probe's reading becomes a page state (browser.whatsapp.classify), without a browser.

The readings are what _PROBE_JS returns; each case is a page the driver meets: the
socket state of the page's modules when they answer, else the DOM's screens.
"""
from __future__ import annotations

import pytest

from browser.whatsapp import (
    Dialog,
    PageState,
    ack_level,
    allowed_action,
    classify,
    is_screen_dialog,
    message_key,
    unknown_dialogs,
)

COMPLETE = {"url": "https://web.whatsapp.com/", "ready": "complete"}


def reading(**fields) -> dict:
    return {**COMPLETE, **fields}


@pytest.mark.parametrize("raw, state", [
    # The main UI, whatever the socket says, unless it names a trouble.
    (reading(loggedIn=True), PageState.CONNECTED),
    (reading(loggedIn=True, socket="CONNECTED"), PageState.CONNECTED),
    (reading(loggedIn=True, socket="TIMEOUT"), PageState.TIMEOUT),
    (reading(loggedIn=True, offline=True), PageState.TIMEOUT),
    (reading(loggedIn=True, screen="ANOTHER_SESSION"), PageState.CONFLICT),  # the 2021-23 modal
    # Whole screens without the main UI, from their text (any socket state) ...
    (reading(screen="TEMP_BAN", socket="CONNECTED"), PageState.TEMP_BANNED),
    (reading(screen="APP_LOCKED"), PageState.APP_LOCKED),
    (reading(screen="TOS_BLOCK"), PageState.TOS_BLOCKED),
    (reading(screen="UNSUPPORTED_BROWSER"), PageState.UNSUPPORTED_BROWSER),
    (reading(screen="CONFLICT"), PageState.CONFLICT),
    (reading(screen="ANOTHER_SESSION"), PageState.CONFLICT),
    (reading(screen="CONNECTING", syncing=True), PageState.CONNECTING),
    (reading(screen="OFFLINE", wid='"1@c.us"'), PageState.TIMEOUT),
    # ... or from the socket alone, in any language.
    (reading(socket="CONFLICT"), PageState.CONFLICT),
    (reading(socket="TOS_BLOCK"), PageState.TOS_BLOCKED),
    (reading(socket="SMB_TOS_BLOCK"), PageState.TOS_BLOCKED),
    (reading(socket="DEPRECATED_VERSION"), PageState.NEEDS_UPDATE),
    (reading(needsUpdate=True, socket="OPENING"), PageState.NEEDS_UPDATE),
    # Logging in.
    (reading(qr="2@x,a,b,c,WEB", socket="UNPAIRED"), PageState.UNPAIRED),
    (reading(code="A,B,C,D,E,F,G,H"), PageState.UNPAIRED),
    (reading(reload=True, socket="UNPAIRED_IDLE"), PageState.UNPAIRED_IDLE),
    (reading(syncing=True), PageState.OPENING),  # the start-up screen has a bar too
    (reading(syncing=True, socket="PAIRING"), PageState.PAIRING),
    # A stored login boots behind the same bar, and may turn out revoked (then a QR shows).
    (reading(syncing=True, wid='"919876543210:3@c.us"'), PageState.OPENING),
    (reading(syncing=True, wid='"919876543210:3@c.us"', socket="OPENING"), PageState.OPENING),
    (reading(syncing=True, text="loading your chats"), PageState.PAIRING),  # 2021-23 sync screen
    (reading(syncing=True, scanned=True), PageState.PAIRING),  # the bar in the document that showed the QR
    (reading(phoneInput=True), PageState.OPENING),
    (reading(socket="OPENING"), PageState.OPENING),
    ({"url": "https://web.whatsapp.com/", "ready": "loading"}, PageState.OPENING),
    # Logged out from the phone.
    (reading(url="https://web.whatsapp.com/?post_logout=1", loggedIn=True), PageState.LOGGED_OUT),
    # Nothing known: never silently OPENING.
    (reading(), PageState.UNKNOWN),
    (reading(text="this site can't be reached"), PageState.UNKNOWN),
    (reading(socket="CONNECTED"), PageState.UNKNOWN),  # connected, yet no main UI and no known screen
])
def test_a_reading_gives_its_state(raw, state):
    assert classify(raw) == state


def test_message_keys_match_across_address_forms():
    assert message_key("true_919876543210@c.us_3EB0AB12") == "3EB0AB12"
    assert message_key("true_123456789012345@lid_3EB0AB12") == "3EB0AB12"
    assert message_key("3EB0AB12") == "3EB0AB12"


@pytest.mark.parametrize("ack, level", [(-1, "failed"), (0, "pending"), (1, "sent"), (2, "delivered"),
                                        (3, "read"), (4, "read"), (None, None)])
def test_model_acks_map_to_levels(ack, level):
    assert ack_level(ack) == level


def test_state_dialogs_are_told_from_other_dialogs():
    assert is_screen_dialog(Dialog("Connecting to WhatsApp Make sure your computer ...", ("Log out",)))
    assert is_screen_dialog(Dialog('WhatsApp is open in another window. Click "Use here" ...', ("Log out", "Use here")))
    assert not is_screen_dialog(Dialog("What's new on WhatsApp Web", ("Continue",)))


def test_only_allow_listed_actions_are_ever_pressed():
    whats_new = Dialog("What's new on WhatsApp Web", ("Continue",))
    cookies = Dialog("Accept cookies from WhatsApp on this browser?", ("Reject", "Accept"))
    stranger = Dialog("Something new", ("Log out", "Later"))
    connecting = Dialog("Connecting to WhatsApp", ("Log out",))
    assert [allowed_action(d) for d in (whats_new, cookies, stranger, connecting)] == ["Continue", "Accept", None, None]
    assert unknown_dialogs((whats_new, cookies, stranger, connecting)) == [stranger]

