"""Every selector, text and module name the driver uses on WhatsApp Web, in one place.

Each name maps to an ordered tuple of alternatives: the first that matches wins, so a
repair the day WhatsApp changes its page is one new line here.  The comment on each
alternative names where and when it was observed (short names as in docs/whatsapp-web.md:
WWJ = whatsapp-web.js, WAJS = wppconnect-team/wa-js, WPP = wppconnect, OWA = open-wa,
ALR = Kalebu/alright, WWW = WebWhatsapp-Wrapper; "module X" = WhatsApp Web's own module
X from public dumps of its 2025-26 bundle; "field code" = a public automation script).
"""
from __future__ import annotations

# --- The page's own modules (read first; the DOM below is the fallback) ---------------
# Socket state (UNPAIRED, PAIRING, CONNECTED, TIMEOUT, CONFLICT, TOS_BLOCK, ...) and takeover().
MODULE_SOCKET = (
    "WAWebSocketModel",  # WWJ src/Client.js (2026-03); WAJS SOCKET_STATE.ts (2026-08)
)
# Stream.needsUpdate: the build is refused (DEPRECATED_VERSION).
MODULE_STREAM = (
    "WAWebStreamModel",  # module WAWebStartup.react; WAJS needsUpdate.ts (2026-08)
)
# Msg and Chat collections: Msg.get(<serialized id>).ack, a message's body and caption.
MODULE_COLLECTIONS = (
    "WAWebCollections",  # WWJ src/util/Injected/Utils.js (2026-03)
)
# Our own ids: getMaybeMePnUser() (phone number), getMaybeMeLidUser() (LID).
MODULE_ME = (
    "WAWebUserPrefsMeUser",  # WWJ and WAJS (2026)
)
# getPhoneNumber(lidWid): the number behind a LID chat.
MODULE_CONTACT = (
    "WAWebApiContact",  # WWJ enforceLidAndPnRetrieval (2026-03)
)
# Opening a chat in the running app: a wid, the existence query (the id WhatsApp really
# uses), find or create the chat, then show it.
MODULE_WID_FACTORY = (
    "WAWebWidFactory",  # WWJ getNumberId (2026-03)
)
MODULE_QUERY_EXISTS = (
    "WAWebQueryExistsJob",  # WWJ getNumberId; WAJS contact.queryWidExists (2026-08)
)
MODULE_FIND_CHAT = (
    "WAWebFindChatAction",  # WAJS src/chat/functions/openChatBottom.ts (2026-02); WWJ getChat
)
MODULE_CMD = (
    "WAWebCmd",  # WWJ src/util/InterfaceController.js openChatWindow (2026-03)
)
# Restrictions on new chats (WHATSAPP_WEB.md section 9): isUserReachoutTimelocked() and
# canSendMsgWhileTimelocked({chat, contact}); isUserCapped() and canSendMsgWhileCapped(...).
MODULE_TIMELOCK = (
    "WAWebReachoutTimelockUtils",  # module useWAWebConversationPanelCanCompose (read_file id 54326521875)
)
MODULE_NEW_CHAT_CAP = (
    "WAWebIndividualNewChatMessageCappingLimitUtils",  # same module; read_file id 54199007728
)
# Marking a chat read: sendSeen({chat, threadId}) (WWJ src/util/Injected/Utils.js sendSeen,
# 2026-03; WAJS chat.markIsRead through its sendSeen, 2026-08); sendSeen(chat, false) on
# older builds, markSeen(chat) where sendSeen broke (field code read_file id 51774443435).
MODULE_UPDATE_UNREAD = (
    "WAWebUpdateUnreadChatAction",
)

# --- Login with a QR code ---------------------------------------------------------------
# The QR canvas sits inside div[data-ref]; data-ref is the whole payload (copied verbatim:
# 5 fields since 2025, 4 before).
QR_CONTAINER = (
    "div[data-ref]",  # WPP src/api/helpers/scrape-img-qr.ts (2026-08); WWW (2019)
)
QR_CANVAS = (
    "canvas[aria-label='Scan this QR code to link a device!']",  # OWA (2026-06), English only
    "div[data-ref] canvas",  # WPP scrape-img-qr.ts (2026-08), any locale
)
# After a few codes the page stops rotating and shows a reload button in div[data-ref].
QR_RELOAD_BUTTON = (
    "div[data-ref] button",  # WPP clicks div[data-ref] [role=button] (2026-08)
    "div[data-ref] [role='button']",  # WPP (2026-08)
    "span[data-icon='refresh-large']",  # WWW (2019-2021 page)
)
# "Log in with phone number": a plain div's text (2024-25), "Link with phone number" before.
LINK_WITH_PHONE_TEXTS = (
    "Log in with phone number",  # field code read_file id 24912157719 (2024-25)
    "Link with phone number",  # public Selenium scripts (2023-24)
)
PHONE_NUMBER_INPUT = (
    "input[aria-label='Type your phone number.']",  # page dump read_file id 58039786517
    "input[aria-label*='phone number']",  # field code read_file id 24912157719 (2024-25)
    "input[type='tel']",  # structural fallback, any locale: unconfirmed
)
# "Next" is a <button> whose inner div holds the text.
PHONE_NUMBER_NEXT_TEXTS = (
    "Next",  # field code read_file id 24912157719 (2024-25)
)
# The code: data-link-code holds its characters joined with commas ("A,B,C,D,E,F,G,H").
PAIRING_CODE = (
    "div[data-link-code]",  # module WAWebLinkDevicePhoneNumberCodeCells.react (read_file id 54114213323)
    "div[aria-details='link-device-phone-number-code-screen-instructions']",  # same module; field code
)
PHONE_NUMBER_ERROR = (
    ".phone-error",  # simulator only; on the real page the code simply does not appear
)

# --- Logged in: the main UI (only this screen has #pane-side) ---------------------------
LOGGED_IN = (
    "#pane-side",  # module WAWebAppUI (MAIN only); OWA (2026-06); field code read_file id 71042067677 (2026-09)
    "[aria-label='Chat list']",  # WPP; English only
)
# Loading screen (start-up and the sync after a scan): a progress bar; since 2025 its only
# text is "WhatsApp" (before: "Loading your chats").
SYNCING = (
    "progress",  # WPP DOM fallback; module WAWebDebouncedLoadingScreen.react
    "[role='progressbar']",  # ARIA equivalent: unconfirmed
)
SYNCING_TEXT = "Loading your chats"  # the 2021-23 sync screen (WWJ waited on it)

# Phone or computer offline, 2021-23 page: a banner above the chat list.
OFFLINE_BANNER = (
    "[data-testid='alert-phone']",  # 2021-23 page (WWJ, WPP)
    "span[data-icon='alert-phone']",  # 2021-23 page: unconfirmed
    "[data-testid='alert-computer']",  # 2021-23 page
    "span[data-icon='alert-computer']",  # 2021-23 page: unconfirmed
)

# --- Whole screens that replace the main UI (module WAWebAppUI, read_file id 60281460002) --
# Matched case-insensitively in the page's text when the modules do not answer. Each tuple
# is one screen; the driver never presses a Log out on any of them.
SCREEN_ANOTHER_WINDOW = (
    "open in another window",  # module WAWebAppUI ANOTHER_SESSION; WWW (2019-23 modal)
)
SCREEN_CONFLICT = (
    "open on another computer or browser",  # module WAWebAppUI CONFLICT (2025-26)
)
SCREEN_TEMP_BAN = (
    "able to use whatsapp again in",  # module WAWebTempBanScreen.react (read_file id 61158246366)
    "temporarily banned",  # simulator title: unconfirmed
)
SCREEN_TOS_BLOCK = (
    'click "log in" to continue',  # module WAWebAppUI TOS_BLOCK (2025-26)
    'click \u201clog in\u201d to continue',  # curly quotes; older bundle "LOG IN" (read_file id 36374890003)
)
SCREEN_NEEDS_UPDATE = (
    "needs to be updated",  # simulator text: unconfirmed
    "update whatsapp",  # older bundle CLIENT_EXPIRED_DIALOG (read_file id 36374890003): unconfirmed
)
SCREEN_UNSUPPORTED_BROWSER = (
    "works with google chrome",  # field code read_file id 70784641075 (2026-10); pmrt/whatshidden#42
)
SCREEN_APP_LOCKED = (
    "whatsapp is locked",  # module WAWebAppUI SCREEN_LOCK; text unconfirmed
)
# The start-up popup while the socket is stuck: its only button is Log out.
SCREEN_CONNECTING = (
    "connecting to whatsapp",  # module WAWebStartup.react (read_file id 54370605617)
)
SCREEN_OFFLINE = (
    "computer not connected",  # module WAWebOffline.react: text unconfirmed; 2021-23 banner
    "phone not connected",  # 2021-23 banner
)
# An app-lock screen has a passcode field and no chat list.
APP_LOCK_INPUT = (
    "input[type='password']",  # module WAWebAppUI SCREEN_LOCK: unconfirmed
)
# "Use here" answers both conflict screens (older bundle: "Use Here").
USE_HERE_TEXTS = (
    "Use here",  # module WAWebAppUI (2025-26)
    "Use Here",  # older bundle (read_file id 36374890003)
)

# --- Dialogs ------------------------------------------------------------------------------
# Modal markup: [data-animate-modal-backdrop] > [role=dialog][aria-modal=true] >
# div[data-animate-modal-popup] > div[data-animate-modal-body] (h1, text, <button>s).
DIALOG = (
    "[role='dialog'][aria-modal='true']",  # module WAWebModal.react (read_file id 53967915151)
    "div[data-animate-modal-popup='true']",  # 2019-23 page (WWW, ALR)
)
DIALOG_BUTTONS = (
    "button",  # module WAWebModal.react (2025-26)
    "[role='button']",  # 2019-23 page (WWW)
)
# Popups that go by themselves (neither answered nor reported).
DIALOG_TRANSIENT_TEXTS = (
    "Starting chat",  # the in-app link's popup: field code read_file id 22076177238 (2024-25)
)
# The only dialog buttons the driver ever presses by itself (exact label, any case).
DIALOG_ALLOWED_ACTIONS = (
    "Continue",  # "What's new" / "A fresh look": wwebjs/whatsapp-web.js#3550 (2025-05); OpenWA#982 (2026-07)
    "OK",  # invalid-number and notice dialogs (ALR; older bundle)
    "Got it",  # notice dialogs (WHATSAPP_WEB.md section 5 rule)
    "Accept",  # cookie dialog (wwebjs/whatsapp-web.js#927, 2021-10)
    "Accept cookies",  # cookie dialog wording: unconfirmed
    "Continuar",  # pt-BR "Continue" (simulator locale table)
    "Entendi",  # pt-BR "Got it": unconfirmed
    "Aceitar",  # pt-BR "Accept" (simulator locale table)
)

# --- Sending ------------------------------------------------------------------------------
# The chat's header: its title is the number (unsaved contact) or a saved name.
CHAT_HEADER_TITLE = (
    "#main header span[title]",  # field code read_file id 71042067677 (2026-09)
    "#main header [title]",  # fallback
)
# The composer: a Lexical editor since 2024 (writing its DOM does not change what is sent).
COMPOSE_BOX = (
    "#main footer div[contenteditable='true'][role='textbox']",  # field code read_file ids 55928010405, 52621497484
    "#main footer div[contenteditable='true'][data-lexical-editor='true']",  # field code read_file id 58793321516
    "#main footer div[contenteditable='true'][data-tab='10']",  # ALR (2021-23)
    "footer div[contenteditable='true']",  # WWW (2019-21)
)
# The page's answer to a chat with a number not on WhatsApp (also shown, 2022, for valid
# numbers when new chats by link were limited).
INVALID_NUMBER_TEXT = "Phone number shared via url is invalid."  # ALR; WWW; 2022 reports (WHATSAPP_WEB.md s9)
# The footer of the open chat: with no composer in it, a restricted or capped compose bar
# holds its place (module useWAWebConversationPanelCanCompose, read_file id 54326521875).
CHAT_FOOTER = (
    "#main footer",  # field code read_file ids 55928010405, 52621497484 (the composer's parent)
)
# The modal a time-locked account gets instead of a new chat (module
# WAWebDialerPadSearchResult.react, read_file id 61082801994): its text is not public; this
# word is a guess (English only) [unverified].
RESTRICTED_DIALOG_TEXTS = (
    "restricted",
)

# Sending media: the attach button, then the exact input of the menu item.
ATTACH_BUTTON = (
    "#main footer span[data-icon='plus-rounded']",  # field code read_file id 58210437121 (2025-26)
    "#main footer button[aria-label='Attach']",  # page dump read_file id 58039786517
    "#main footer button[title='Attach']",  # page dump read_file id 58039786517
    "#main footer span[data-icon='attach-menu-plus']",  # ALR (2023)
    "#main footer span[data-icon='clip']",  # ALR, older builds
    "#main footer div[title='Attach']",  # 2021-23 page: unconfirmed
)
# Exactly this accept: a sticker-maker item has its own accept="image/*" input (files
# sent through it arrive as stickers), so never match a prefix of it.
MEDIA_INPUT = (
    "input[type='file'][accept='image/*,video/mp4,video/3gpp,video/quicktime']",  # many 2024-26 scripts; ALR
)
DOCUMENT_INPUT = (
    "input[type='file'][accept='*']",  # page dump read_file id 58039786517; ALR send_file
)
# The media editor's own caption box (the chat composer behind it must not be used).
CAPTION_BOX = (
    "div[contenteditable='true'][role='textbox'][aria-placeholder='Add a caption']",  # read_file id 58039786517
    "div[contenteditable='true'][role='textbox'][aria-label='Add a caption']",  # read_file id 24912157719
    "div[contenteditable='true'][data-lexical-editor='true']:not(footer *)",  # structural, any locale: unconfirmed
    "div[contenteditable='true'][data-tab='undefined']",  # ALR, older builds
)
TOAST = (
    "div[role='alert']",  # error toasts, e.g. the file-size limit
    "[data-testid='toast']",  # simulator only
)

# --- Message rows and acks -------------------------------------------------------------
# Rows: div[data-id="<fromMe>_<chat>_<id>"]; the chat is <digits>@c.us or, for chats keyed
# by a hidden contact id since 2025, <lid>@lid. Only the last segment identifies the message.
OUTGOING_ROW_PREFIX = "true_"  # WWJ message id serialization; IndexedDB dump read_file id 62814259607
OPEN_CHAT_ROWS = (
    "#main div[data-id]",  # rows of the open chat only (WWJ, WPP)
)
MESSAGE_TEXT = (
    "[data-pre-plain-text] .selectable-text",  # field code read_file id 68946295161
    "span.selectable-text",  # ALR, WWW (the text, or a media message's caption)
    ".copyable-text",
)
# A row's stamp, data-pre-plain-text="[<time>, <date>] <sender>: ", in the page's language and
# local time: en-US "[8:19 PM, 6/13/2026] You: " (field code read_file ids 54826676642, 2026;
# 1407734506, 2021), pt-BR "[18:22, 15/08/2026] Você: " (read_file id 71042067677, 2026-09).
MESSAGE_STAMP = (
    "[data-pre-plain-text]",
)
# The chat list: one row per chat, its title (the number for a contact not saved) and, when
# the last message is ours, that message's status icon.
CHAT_LIST_ROWS = (
    "#pane-side [role='row']",  # field code read_file ids 71042067677, 69590871611 (2026-09), any locale
    "[aria-label='Chat list'] [role='row']",  # WPP, English only
)
CHAT_TITLE = (
    "span[title]",  # field code read_file id 71042067677 (2026-09)
)
# What the chat list says of incoming messages without opening the chat (opening it marks it
# read): the unread count, an aria-label such as "3 unread messages" ("9 mensagens não lidas",
# "1.227 mensagens não lidas" with a thousands separator: field code read_file id 71042067677,
# 2026-09), and the newest message's preview.
CHAT_UNREAD_BADGE = (
    "[aria-label*='unread message']",  # English; simulator span.unread-badge
    "[aria-label*='não lida']",  # pt-BR, field code read_file id 71042067677
)
CHAT_PREVIEW = (
    "span.chat-last[title]",  # simulator only
    "span[dir='auto'][title]",  # [unverified]: the preview's span[title] after the chat's title
)
# Status icons since 2025: a WDS <svg> named in its <title>, no data-icon, names shifted by
# one against the acks: pending, then ONE tick named "delivered" for sent, then "read" in
# grey for delivered and in blue for read.
TICK_TITLE_PENDING = (
    "wds-ic-status-pending",  # module WAWebMessageStatus (read_file id 61077076142)
    "ic-schedule",  # module WAWebChatMsgAck.react (chat list, read_file id 61308081826)
)
TICK_TITLE_SENT = (
    "wds-ic-delivered",  # module WAWebMessageStatus: the single tick is SENT
)
TICK_TITLE_DELIVERED_OR_READ = (
    "wds-ic-read",  # module WAWebMessageStatus: grey = delivered, blue = read
)
# In the open chat the icon's aria-label also names the ack (localized); in the chat list
# only the colour tells read from delivered: "blue channel dominates" (read_file id 69590871611).
READ_ARIA_LABEL = " Read "  # module WAWebMessageStatus; 2021-23 page (English only)
# 2021-23 page: span[data-icon] icons.
STATUS_ICON = (
    "[data-icon^='msg-']",  # module WAWebSvgComponentBase (read_file id 60985160282), 2021-23 page
    "[data-icon^='status-']",  # chat-list icons on some 2021-23 builds: unconfirmed
)
ICON_PENDING = "msg-time"  # 2021-23 page (ALR waits for it to disappear)
ICON_SENT = "msg-check"  # 2021-23 page
ICON_DELIVERED = "msg-dblcheck"  # 2021-23 page
ICON_FAILED = "msg-error"  # simulator legacy profile: unconfirmed

# Own number: localStorage holds a JSON-quoted wid such as "919876543210:12@c.us".
OWN_WID_KEYS = (
    "last-wid-md",  # OWA (2026-06); WPP definitions.ts (multi-device)
    "last-wid",  # OWA, pre multi-device
)

# Logged out from the phone: the page navigates to a URL with this mark.
LOGOUT_URL_MARK = "post_logout=1"  # WWJ framenavigated handler (2026-03); OWA (2026-06)
