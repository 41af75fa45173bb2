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
# "Link with phone number": a phone-number input, then an 8-character code on screen.
# Observed on the real page by public Selenium login scripts (GitHub searches for
# "Type your phone number." and "data-link-code"); WWJ pairWithPhoneNumber does the same
# through the page's modules.
LINK_WITH_PHONE_TEXTS = (
    "Link with phone number",  # span text (public Selenium scripts, 2024)
    "Log in with phone number",  # newer wording (public Selenium scripts, 2025)
)
LINK_BUTTONS = (
    "div[role='button']",  # the landing page's text buttons
    "span[role='button']",  # fallback, unconfirmed
    "span",  # the span holding the text itself
)
PHONE_NUMBER_INPUT = (
    "input[aria-label='Type your phone number.']",  # public Selenium scripts
    "input[aria-label*='phone number']",  # public Selenium scripts (contains 'phone number')
)
PHONE_NUMBER_NEXT = (
    "button.btn-next",  # simulator only
    "div[role='button'][aria-label='Next']",  # fallback, unconfirmed
)
PHONE_NUMBER_NEXT_TEXT = "Next"  # //button//div[text()="Next"] in public Selenium scripts
# The code: data-link-code holds its characters joined with commas ("A,B,C,D,E,F,G,H").
PAIRING_CODE = (
    "div[data-link-code]",  # WhatsApp Web's own bundle (WAWebLinkDeviceCode); public scripts
    "div[aria-details='link-device-phone-number-code-screen-instructions']",  # public scripts
)
PHONE_NUMBER_ERROR = (
    ".phone-error",  # simulator only; on the real page the code simply does not appear
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
    "[data-testid='progress-bar']",  # fallback, unconfirmed
)
# The start-up screen has a progress bar too; the sync screen says this (WWJ waits on it).
SYNCING_TEXT = "Loading your chats"  # the real page's sync screen (WHATSAPP_WEB.md section 2)

# Phone or computer offline (socket state TIMEOUT): a banner above the chat list.
OFFLINE_BANNER = (
    "[data-testid='alert-phone']",  # WHATSAPP_WEB.md section 2 (TIMEOUT); older pages
    "span[data-icon='alert-phone']",  # icon names: unconfirmed
    "[data-testid='alert-computer']",  # WHATSAPP_WEB.md section 2 (TIMEOUT)
    "span[data-icon='alert-computer']",  # icon names: unconfirmed
)
# Opened in another window (socket state CONFLICT): a modal whose second button is "Use here".
CONFLICT_TEXT = "WhatsApp is open in another window"  # WWW webwhatsapi/__init__.py
CONFLICT_MODAL = (
    "div[data-animate-modal-body='true']",  # WWW
    "div[role='dialog']",
)
CONFLICT_BUTTONS = (
    "div[data-animate-modal-body='true'] div[role='button']",  # WWW: second one is "Use here"
    "div[role='dialog'] div[role='button']",
)
USE_HERE_TEXT = "Use here"  # WHATSAPP_WEB.md section 2; WWW

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

# Sending media (ALR alright/__init__.py send_picture / send_file).
ATTACH_BUTTON = (
    "#main footer span[data-icon='attach-menu-plus']",  # ALR (2023+)
    "#main footer span[data-icon='plus']",  # fallback, unconfirmed
    "#main footer span[data-icon='clip']",  # ALR, older builds
    "#main footer div[title='Attach']",  # fallback, unconfirmed
)
MEDIA_INPUT = (
    "input[type='file'][accept='image/*,video/mp4,video/3gpp,video/quicktime']",  # ALR, WHATSAPP_WEB.md s5
    "input[type='file'][accept^='image/']",  # fallback
)
DOCUMENT_INPUT = (
    "input[type='file'][accept='*']",  # ALR send_file
)
CAPTION_BOX = (
    "div[contenteditable='true'][role='textbox'][aria-label='Add a caption']",  # public Selenium scripts
    "div[contenteditable='true'][data-tab='undefined']",  # ALR, older builds
)
MEDIA_SEND_BUTTON = (
    "div[role='button'][aria-label='Send']",  # ALR
    "span[data-icon='send']",  # ALR, WWW
)
TOAST = (
    "div[role='alert']",  # error toasts, e.g. the file-size limit
    "[data-testid='toast']",  # simulator only
)

# Message rows: div[data-id="true_<digits>@c.us_<ID>"]; web-client ids start with 3EB0.
OUTGOING_ROW_PREFIX = "true_{jid}_"  # WWJ message id serialization, WHATSAPP_WEB.md section 4
MESSAGE_ROW = (
    "div[data-id]",  # WWJ, WPP
)
MESSAGE_TEXT = (
    "span.selectable-text",  # ALR, WWW (the text, or a media message's caption)
    ".copyable-text",
)
OPEN_CHAT_ROWS = (
    "#main div[data-id]",  # rows of the open chat only
)
# The chat list: one row per chat, its title (the number for a contact not saved) and,
# when the last message is ours, that message's status icon.
CHAT_LIST_ROWS = (
    "[aria-label='Chat list'] [role='row']",  # WPP (chat list grid)
    "#pane-side [role='row']",  # fallback
)
CHAT_TITLE = (
    "span[title]",  # WWW (chat title span)
)
# Status icon of an outgoing row: pending -> server -> delivered -> read. In the chat list
# the same icons are named status-* on some builds.
STATUS_ICON = (
    "[data-icon^='msg-']",  # WHATSAPP_WEB.md section 4
    "[data-icon^='status-']",  # chat-list icons on some builds: unconfirmed
)
ICON_PENDING = "msg-time"  # WHATSAPP_WEB.md section 4 (ALR waits for it to disappear)
ICON_SENT = "msg-check"  # WHATSAPP_WEB.md section 4
ICON_DELIVERED = "msg-dblcheck"  # WHATSAPP_WEB.md section 4
ICON_FAILED = "msg-error"  # simulator; unconfirmed
READ_ARIA_LABEL = " Read "  # WHATSAPP_WEB.md section 4

# Own number: localStorage holds a JSON-quoted wid such as "919876543210:12@c.us".
OWN_WID_KEYS = (
    "last-wid-md",  # WPP src/api/model/enum/definitions.ts (multi-device)
    "last-wid",  # OWA, pre multi-device
)

# Logged out from the phone: the page navigates to a URL with this mark.
LOGOUT_URL_MARK = "post_logout=1"  # WHATSAPP_WEB.md section 2
