"""Every selector the driver uses on WhatsApp Web, in one place.

Each name maps to an ordered tuple of alternatives: the first that matches wins, so a
repair the day WhatsApp changes its page is one new line here.  The comment on each
names where the selector was observed on the real page (see docs/whatsapp-web.md and
shared WHATSAPP_WEB.md for the short names: WWJ, WAJS, WPP, ALR, WWW, OWA).
"""
from __future__ import annotations

# Login with a QR code. The QR canvas sits inside div[data-ref]; data-ref is the payload.
QR_CONTAINER = (
    "div[data-ref]",  # WWW webwhatsapi/__init__.py; WPP src/api/helpers/scrape-img-qr.ts
)
QR_CANVAS = (
    "canvas[aria-label='Scan this QR code to link a device!']",  # OWA
    "div[data-ref] canvas",  # WPP scrape-img-qr.ts
)
# After about six codes the page stops rotating and shows a reload button in div[data-ref].
QR_RELOAD_BUTTON = (
    "div[data-ref] button",  # WWJ src/Client.js (qr retry), WHATSAPP_WEB.md section 1
    "span[data-icon='refresh-large']",  # older pages (WWW)
)
LANDING = (
    ".landing-wrapper",  # WPP DOM fallback: landing plus canvas means "needs scan"
)

# Logged in: the chat list is present.
LOGGED_IN = (
    "#pane-side",  # WWJ, WPP
    "[aria-label='Chat list']",  # WPP
    "[aria-label='Search or start a new chat']",  # WPP, ALR
)
# Scanned, history syncing (socket state PAIRING): a progress bar instead of the QR.
SYNCING = (
    "progress",  # WPP (loading screen)
    "[data-testid='progress-bar']",
)

# Sending text through /send?phone=&text= (ALR alright/__init__.py).
COMPOSE_BOX = (
    "#main footer div[contenteditable='true'][role='textbox']",  # ALR
    "#main footer div[contenteditable='true'][data-tab='10']",  # ALR, older builds
    "footer div[contenteditable='true']",  # WWW
)
SEND_BUTTON = (
    "#main footer button[aria-label='Send']",  # ALR
    "#main footer span[data-icon='send']",  # ALR, WWW
)
INVALID_NUMBER_DIALOG = (
    "div[data-animate-modal-popup='true']",  # ALR
    "div[role='dialog']",
)
INVALID_NUMBER_TEXT = "Phone number shared via url is invalid."  # ALR
DIALOG_OK_BUTTON = (
    "div[data-animate-modal-popup='true'] button",  # ALR
    "div[role='dialog'] div[role='button']",
    "div[role='dialog'] button",
)

# Message rows: div[data-id="true_<digits>@c.us_<ID>"]; web-client ids start with 3EB0.
OUTGOING_ROW_PREFIX = "true_{jid}_"  # WWJ message id serialization, WHATSAPP_WEB.md section 4
MESSAGE_ROW = (
    "div[data-id]",  # WWJ, WPP
)
# Status icon of an outgoing row: pending -> server -> delivered -> read.
ICON_PENDING = "msg-time"  # WHATSAPP_WEB.md section 4 (ALR waits for it to disappear)
ICON_SENT = "msg-check"
ICON_DELIVERED = "msg-dblcheck"
READ_ARIA_LABEL = " Read "

# Own number: localStorage holds a JSON-quoted wid such as "919876543210:12@c.us".
OWN_WID_KEYS = (
    "last-wid-md",  # WPP src/api/model/enum/definitions.ts (multi-device)
    "last-wid",  # OWA, pre multi-device
)

# Logged out from the phone: the page navigates to a URL with this mark.
LOGOUT_URL_MARK = "post_logout=1"  # WHATSAPP_WEB.md section 2
