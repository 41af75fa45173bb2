"""The 2026 profile of the WhatsApp Web simulator page (simulator/static/app2026.js, wa-modules.js,
wa-i18n.js) in a real headless Chromium, against the simulator in a background thread.

Each test pins the knobs it depends on; waits are explicit (WebDriverWait with a deadline). The simulator,
the browser and the waits are shared with test_simulator_page.py (tests/simulator_page_support.py).
"""
from __future__ import annotations

import json
import os
import re
import time

import pytest
from PIL import Image
from selenium.common.exceptions import ElementClickInterceptedException, JavascriptException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from simulator import SimConfig
from tests.simulator_page_support import (IGNORED, OWN, QR_CANVAS, PageSteps, Sim, click_link, en_us_stamp,
                                          eventually, needs_chromium, page_fixtures)

pytestmark = needs_chromium

CHAT_LIST = '#app #side #pane-side div[aria-label="Chat list"][role="grid"]'
COMPOSE = ('#main footer div[contenteditable="true"][role="textbox"][data-lexical-editor="true"]'
           '[aria-placeholder="Type a message"][data-tab="10"]')
DIALOG = '[data-animate-modal-backdrop] > [role="dialog"][aria-modal="true"] > div[data-animate-modal-popup]'
MEDIA_ACCEPT = "image/*,video/mp4,video/3gpp,video/quicktime"
FAST = dict(profile="2026", locale="en", boot_seconds=0.2, ua_gate=False, cookie_banner=False, onboarding=False,
            first_reload_after_link=-1, lid_share=0.0, lid_numbers=[], pn_numbers=[], modules=True,
            open_chat_args="object", page_heap_mb=0, qr_first_ttl=60, qr_ttl=20, qr_count=6, sync_delay=0.2,
            pair_code_ttl=180, deliver_delay=0.3, read_delay=0.3, media_max_mb=16, doc_max_mb=100, latency_ms=0,
            poll_ms=100)


# ----------------------------------------------------------------------------- helpers
STEPS = PageSteps(CHAT_LIST, COMPOSE, ignored=IGNORED + (JavascriptException,))
wait, find, gone, current_payload, login, open_send = (STEPS.wait, STEPS.find, STEPS.gone, STEPS.current_payload,
                                                       STEPS.login, STEPS.open_send)


def js(driver, script: str, *args):
    return driver.execute_script(script, *args)


def button(driver, text: str, scope: str = "", timeout: float = 10):
    """A real <button> whose normalized text is ``text`` (optionally inside the CSS ``scope``)."""
    def look(d):
        root = d.find_element(By.CSS_SELECTOR, scope) if scope else d
        for b in root.find_elements(By.TAG_NAME, "button"):
            if b.text.strip() == text and b.is_displayed():
                return b
        return False
    return wait(driver, timeout).until(look, f"no <button> {text!r} in {scope or 'page'}")


def fmt(phone: str) -> str:
    """The server's formatted title for an Indian test number."""
    return f"+{phone[:2]} {phone[2:7]} {phone[7:]}"


def module_call(driver, body: str, *args):
    """Run ``body`` (may use await; `req` = window.require) in the page and return its value or {'error': ...}."""
    return driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "const req = window.require;"
        "(async () => {" + body + "})().then(v => done({value: v}),"
        " e => done({error: String(e && e.name) + ': ' + String(e && e.message)}));", *args)


def status_spec(status_el) -> tuple[str, str | None, bool]:
    """(svg title, aria-label, blue) of an open-chat status icon."""
    title = status_el.find_element(By.CSS_SELECTOR, "svg > title").get_attribute("textContent")
    return title, status_el.get_attribute("aria-label"), "ack-blue" in (status_el.get_attribute("class") or "")


# ----------------------------------------------------------------------------- fixtures
# page: the shared browser on a clean simulator (2026 profile, fast knobs) with empty storage
sim, browser, page = page_fixtures(lambda: Sim(SimConfig(port=0, **FAST)), profile_prefix="sim26-profile-",
                                   clear_storage="localStorage.clear(); sessionStorage.clear();", lang="en-US",
                                   script_timeout=15)


# ----------------------------------------------------------------------------- boot and login
def test_boot_screen_load_causes_and_login_page(sim, page):
    sim.config(boot_seconds=1.2)
    t0 = time.monotonic()
    page.get(sim.base + "/")
    startup = find(page, '#app > div[data-testid="startup"]')
    assert startup.find_elements(By.TAG_NAME, "progress")
    assert startup.text.strip() == "WhatsApp" and "Loading your chats" not in page.page_source
    assert js(page, "return window.Debug.VERSION") == "2.3000.1030472176"
    assert js(page, "return window.require('WAWebSocketModel').Socket.state") == "OPENING"
    assert js(page, "return window.require('WAWebStreamModel').Stream.displayInfo") == "OPENING"
    assert sim.state()["connections"] == []  # nothing connects while the loading screen lasts
    canvas = find(page, QR_CANVAS)
    assert time.monotonic() - t0 >= 1.1
    assert page.find_element(By.TAG_NAME, "h1").text == "Log into WhatsApp Web"
    ref = page.find_element(By.CSS_SELECTOR, "div[data-ref]").get_attribute("data-ref")
    assert len(ref.split(",")) == 5 and canvas.get_attribute("width") == "264"
    assert not page.find_elements(By.CSS_SELECTOR, ".landing-wrapper")
    assert js(page, "return window.require('WAWebSocketModel').Socket.state") == "UNPAIRED"
    assert js(page, "return window.require('WAWebConnModel').Conn.ref") == ref.split(",")[0]

    sim.config(boot_seconds=0.2)
    page.refresh()
    find(page, QR_CANVAS)
    causes = [load["cause"] for load in sim.counters()["unlinked"]["loads"]]
    assert causes == ["navigation", "reload"], causes

    # idle: no canvas, a reload <button> with the refresh icon inside div[data-ref]
    sim.config(qr_first_ttl=0.3, qr_ttl=0.3, qr_count=1)
    js(page, "window.require('WAWebCmd').Cmd.refreshQR()")
    reload_btn = find(page, 'div[data-ref] > button span[data-icon="refresh-large"]')
    assert not page.find_elements(By.CSS_SELECTOR, "div[data-ref] canvas")
    wait(page).until(lambda d: d.execute_script("return window.require('WAWebSocketModel').Socket.state")
                     == "UNPAIRED_IDLE")
    sim.config(qr_first_ttl=60)
    reload_btn.click()
    find(page, QR_CANVAS)


def test_cookie_dialog_until_accepted(sim, page):
    sim.config(cookie_banner=True)
    page.get(sim.base + "/")
    popup = find(page, DIALOG)
    assert all(e.is_displayed() for e in page.find_elements(
        By.CSS_SELECTOR, "[data-animate-modal-backdrop], [role=dialog][aria-modal=true], [data-animate-modal-popup]"))
    assert popup.get_attribute("aria-label").startswith("Accept cookies from WhatsApp on this browser?")
    body = popup.find_element(By.CSS_SELECTOR, "div[data-animate-modal-body]")
    assert body.find_element(By.TAG_NAME, "h1").text == "Accept cookies from WhatsApp on this browser?"
    assert [b.text for b in body.find_elements(By.TAG_NAME, "button")] == ["Reject", "Accept"]
    find(page, QR_CANVAS)  # the login page is behind it
    with pytest.raises(ElementClickInterceptedException):
        page.find_element(By.XPATH, '//div[text()="Log in with phone number"]').click()
    button(page, "Reject", DIALOG).click()
    gone(page, DIALOG)
    page.refresh()  # rejected: asked again on the next load
    button(page, "Accept", DIALOG).click()
    gone(page, DIALOG)
    assert js(page, "return localStorage.getItem('WACookieConsent')") == "accepted"
    page.refresh()
    find(page, QR_CANVAS)
    assert not page.find_elements(By.CSS_SELECTOR, DIALOG)
    assert [c["accepted"] for c in sim.counters()["cookies"]] == [False, True]


def test_phone_number_login(sim, page):
    page.get(sim.base + "/")
    find(page, QR_CANVAS)
    entry = page.find_element(By.XPATH, '//div[normalize-space(text())="Log in with phone number"]')
    assert entry.get_attribute("role") is None and entry.tag_name == "div"
    entry.click()
    phone_input = find(page, 'input[aria-label="Type your phone number."]')
    wait(page).until(lambda d: phone_input.get_attribute("value") == "+91 ")
    country = page.find_element(By.CSS_SELECTOR, 'button[aria-label="Selected country: India"]')
    assert country.find_elements(By.CSS_SELECTOR, "svg")
    country.click()
    search = find(page, ".wa-country-list input")
    search.send_keys("bra")
    wait(page).until(lambda d: [b.get_attribute("aria-label") for b in d.find_elements(
        By.CSS_SELECTOR, ".wa-country-list button") if b.is_displayed()] == ["Selected country: Brazil"])
    page.find_element(By.CSS_SELECTOR, '.wa-country-list button[aria-label="Selected country: Brazil"]').click()
    assert phone_input.get_attribute("value") == "+55 "
    find(page, 'button[aria-label="Selected country: Brazil"]')
    phone_input.send_keys("+91 98765 43210")  # a typed "+" replaces the prefix
    assert phone_input.get_attribute("value") == "+91 98765 43210"
    page.find_element(By.XPATH, '//button[div[text()="Next"]]').click()
    box = find(page, 'div[data-link-code][aria-details="link-device-phone-number-code-screen-instructions"]')
    code = box.get_attribute("data-link-code")
    assert re.fullmatch(r"([A-Z0-9],){7}[A-Z0-9]", code)
    r = sim.post("/sim/phone/pair", {"code": code.replace(",", ""), "phone": OWN})
    assert r.status_code == 200, r.text
    find(page, CHAT_LIST)


# ----------------------------------------------------------------------------- MAIN
def test_main_rows_search_and_menu_logout(sim, page):
    login(sim, page)
    peers = ["919876500001", "919876500002"]
    for p in peers:
        sim.ok("/sim/control/incoming", {"from": p, "text": f"hello from {p[-1]}"})
    for p in peers:
        find(page, f'{CHAT_LIST} span[title="{fmt(p)}"]')
    rows = page.find_elements(By.CSS_SELECTOR, f"{CHAT_LIST} [role=row]")
    assert len(rows) == 2
    attrs = js(page, "return Array.from(arguments[0]).map(r => Array.from(r.attributes).map(a => a.name))", rows)
    assert all(not any(a.startswith("data-") for a in names) for names in attrs), attrs
    assert not page.find_elements(By.CSS_SELECTOR, f"{CHAT_LIST} a[href]")
    find(page, f'{CHAT_LIST} span[aria-label="1 unread message"]')
    search = page.find_element(By.CSS_SELECTOR, '#side input[type="text"][aria-label="Search or start a new chat"][data-tab="3"]')

    def visible_titles(d):
        return [r.find_element(By.CSS_SELECTOR, "span[title]").get_attribute("title")
                for r in d.find_elements(By.CSS_SELECTOR, f"{CHAT_LIST} [role=row]") if r.is_displayed()]

    js(page, "arguments[0].value = '00002'", search)  # no input event: no filtering
    sim.ok("/sim/control/incoming", {"from": peers[0], "text": "again"})  # a re-render keeps the old filter
    wait(page).until(lambda d: d.find_elements(By.CSS_SELECTOR, f'{CHAT_LIST} span[aria-label="2 unread messages"]'))
    assert sorted(visible_titles(page)) == sorted(fmt(p) for p in peers)
    search.clear()
    search.send_keys("00002")
    wait(page).until(lambda d: visible_titles(d) == [fmt(peers[1])])
    search.send_keys(Keys.BACKSPACE * 5)
    wait(page).until(lambda d: len(visible_titles(d)) == 2)

    menu = page.find_element(By.CSS_SELECTOR, '#side button[aria-label="Menu"]')
    menu.click()
    page.find_element(By.XPATH, '//*[@role="button"][normalize-space(.)="Log out"]').click()
    find(page, QR_CANVAS)
    clicks = sim.counters()["logout_clicks"]
    assert [c["from"] for c in clicks] == ["menu"]
    assert js(page, "return localStorage.getItem('last-wid-md')") is None


RECORD_TICKS = """
window.__ticks = [];
const seen = {};
const record = () => document.querySelectorAll('#main [data-id^="true_"]').forEach(row => {
  const s = row.querySelector('.msg-status');
  const title = s && s.querySelector('svg > title');
  if (!title) return;
  const v = title.textContent + '|' + s.getAttribute('aria-label') + '|' + s.classList.contains('ack-blue');
  if (seen[row.dataset.id] !== v) { seen[row.dataset.id] = v; window.__ticks.push(v); }
});
new MutationObserver(record).observe(document.querySelector('#main'),
  {subtree: true, childList: true, attributes: true, characterData: true});
window.__acks = []; window.__added = [];
const Msg = window.require('WAWebCollections').Msg;
Msg.on('change:ack', (m, ack) => window.__acks.push([m.id._serialized, ack]));
Msg.on('add', m => window.__added.push(m.id._serialized));
"""


def test_send_shifted_ticks_and_msg_model(sim, page):
    peer = "919876500011"
    login(sim, page)
    box = open_send(sim, page, peer, "Hello\nworld")
    assert page.find_element(By.CSS_SELECTOR, "#main header span[title]").get_attribute("title") == fmt(peer)
    assert box.get_attribute("aria-label") == f"Type to {fmt(peer)}"
    send = find(page, '#main footer button[aria-label="Send"] > span[data-icon="wds-ic-send-filled"] > svg > title')
    assert send.get_attribute("textContent") == "wds-ic-send-filled"
    js(page, RECORD_TICKS)
    before = time.time()
    box.send_keys(Keys.ENTER)
    row = find(page, f'#main div[role="row"] div[data-id^="true_{peer}@c.us_3EB0"]')
    data_id = row.get_attribute("data-id")
    assert re.fullmatch(rf"true_{peer}@c\.us_3EB0[0-9A-F]{{20}}", data_id)
    assert row.find_element(By.CSS_SELECTOR, "[data-pre-plain-text] .selectable-text").text == "Hello\nworld"
    # The stamp as the real page writes it in en-US, in the browser's (here the machine's) time
    # zone: "[8:19 PM, 6/13/2026] You: " (field code read_file id 54826676642).
    stamp = row.find_element(By.CSS_SELECTOR, "[data-pre-plain-text]").get_attribute("data-pre-plain-text")
    assert stamp in {f"[{en_us_stamp(t)}] You: " for t in (before, time.time())}
    status = row.find_element(By.CSS_SELECTOR, ".msg-status")
    wait(page).until(lambda d: status_spec(status) == ("wds-ic-read", " Read ", True))
    assert not row.find_elements(By.CSS_SELECTOR, "[data-icon^='msg-'], .msg-status [data-icon]")
    ticks = js(page, "return window.__ticks")
    assert ticks == ["wds-ic-status-pending| Pending |false", "wds-ic-delivered| Sent |false",
                     "wds-ic-read| Delivered |false", "wds-ic-read| Read |true"], ticks
    assert js(page, "return window.__added") == [data_id]
    assert [a for s, a in js(page, "return window.__acks") if s == data_id] == [1, 2, 3]
    model = module_call(page, "const m = req('WAWebCollections').Msg.get(arguments[0]);"
                              "return [m.ack, m.body, m.id.fromMe, m.id.remote._serialized, m.id.id];", data_id)
    assert model == {"value": [3, "Hello\nworld", True, f"{peer}@c.us", data_id.rsplit("_", 1)[1]]}
    assert sim.messages(to=peer)[0]["serialized"] == data_id

    # chat list: names only, read = the blue class, no aria-label
    ack = find(page, f"{CHAT_LIST} span.chat-ack.ack-blue")
    assert ack.find_element(By.CSS_SELECTOR, "svg > title").get_attribute("textContent") == "wds-ic-read"
    assert ack.get_attribute("aria-label") is None and not ack.get_attribute("data-icon")
    assert "123, 252" in ack.value_of_css_property("color")

    # ack -1 (refused by the server) is drawn as pending
    sim.config(unregistered=[peer])
    box.send_keys("refused", Keys.ENTER)
    rows = page.find_elements(By.CSS_SELECTOR, f'#main div[data-id^="true_{peer}@c.us_"]')
    assert len(rows) == 2
    refused = rows[1].get_attribute("data-id")
    wait(page).until(lambda d: module_call(d, "return req('WAWebCollections').Msg.get(arguments[0]).ack",
                                           refused) == {"value": -1})
    assert status_spec(rows[1].find_element(By.CSS_SELECTOR, ".msg-status")) == \
        ("wds-ic-status-pending", " Pending ", False)


def test_lid_chat_rows_and_address_modules(sim, page):
    peer = "919876500021"
    sim.config(lid_numbers=[peer])
    info = login(sim, page)
    box = open_send(sim, page, peer, "via lid")
    assert page.find_element(By.CSS_SELECTOR, "#main header span[title]").get_attribute("title") == fmt(peer)
    box.send_keys(Keys.ENTER)
    row = find(page, '#main div[data-id^="true_"][data-id*="@lid_3EB0"]')
    m = re.fullmatch(r"true_(\d+)@lid_(3EB0[0-9A-F]{20})", row.get_attribute("data-id"))
    assert m, row.get_attribute("data-id")
    lid = m.group(1)
    assert lid != peer
    wait(page).until(lambda d: status_spec(row.find_element(By.CSS_SELECTOR, ".msg-status"))[2])
    got = module_call(page, """
        const W = req('WAWebWidFactory'), C = req('WAWebApiContact'), me = req('WAWebUserPrefsMeUser');
        const pn = W.createWid(arguments[0] + '@c.us');
        const exists = await req('WAWebQueryExistsJob').queryWidExists(pn);
        const found = await req('WAWebFindChatAction').findOrCreateLatestChat(pn, 'newChatFlow');
        const chat = req('WAWebCollections').Chat.get(found.chat.id);
        const msg = req('WAWebCollections').Msg.get(arguments[1]);
        return {exists: exists && exists.wid._serialized, chatId: found.chat.id._serialized, created: found.created,
                model: !!chat, msgs: chat.msgs.getModelsArray().length, lid: C.getCurrentLid(pn)._serialized,
                back: C.getPhoneNumber(W.createWid(arguments[2] + '@lid'))._serialized,
                isLid: chat.id.isLid(), remote: msg.id.remote._serialized,
                mePn: me.getMaybeMePnUser()._serialized, meLid: me.getMaybeMeLidUser() && me.getMaybeMeLidUser()._serialized,
                none: await req('WAWebQueryExistsJob').queryWidExists(W.createWid('919999999999@c.us'))};
    """, peer, row.get_attribute("data-id"), lid)
    st = sim.state()
    me_lid = next(c for c in st["connections"] if c["cid"] == info["cid"]).get("lid") or \
        next(d for d in st["devices"] if d["token"] == info["token"]).get("lid")
    assert got == {"value": {"exists": f"{peer}@c.us", "chatId": f"{lid}@lid", "created": False, "model": True,
                             "msgs": 1, "lid": f"{lid}@lid", "back": f"{peer}@c.us", "isLid": True,
                             "remote": f"{lid}@lid", "mePn": f"{OWN}@c.us", "meLid": f"{me_lid}@lid",
                             "none": None}}, got
    log = sim.messages(to=peer)
    assert log[0]["serialized"] == row.get_attribute("data-id") and log[0]["chat"] == f"{lid}@lid"
    js(page, "window.require('WAWebSocketModel').Socket.logout()")  # a Log out like any other
    find(page, QR_CANVAS)
    assert [c["from"] for c in sim.counters()["logout_clicks"]] == ["model"]


def test_send_seen_marks_a_chat_read_without_opening_it(sim, page):
    """WAWebUpdateUnreadChatAction.sendSeen({chat, threadId}) as WWJ calls it; a bare chat model
    (the signature before it changed) is refused; markSeen(chat) works too."""
    peer, other = "919876500031", "919876500032"
    login(sim, page)
    for p in (peer, peer, other):
        sim.ok("/sim/control/incoming", {"from": p, "text": "unread"})
    find(page, f'{CHAT_LIST} span[aria-label="2 unread messages"]')
    find(page, f'{CHAT_LIST} span[aria-label="1 unread message"]')
    got = module_call(page, """
        const W = req('WAWebWidFactory'), Chat = req('WAWebCollections').Chat, U = req('WAWebUpdateUnreadChatAction');
        const S = req('WAWebStreamModel').Stream;
        const chat = Chat.get(W.createWid(arguments[0] + '@c.us')), other = Chat.get(W.createWid(arguments[1] + '@c.us'));
        let bare = null;
        try { await U.sendSeen(chat, false); } catch (e) { bare = e.name; }
        const before = chat.unreadCount;
        S.markAvailable();
        const available = S.available;
        await U.sendSeen({chat: chat, threadId: undefined});
        S.markUnavailable();
        await U.markSeen(other);
        return {bare, before, available, after: chat.unreadCount, other: other.unreadCount, unavailable: S.available};
    """, peer, other)
    assert got == {"value": {"bare": "TypeError", "before": 2, "available": True, "after": 0, "other": 0,
                             "unavailable": False}}, got
    chats = {c["peer"]: c["unread"] for c in sim.get("/sim/control/chats", phone=OWN).json()["chats"]}
    assert chats == {peer: 0, other: 0}
    reads = sim.counters()["chat_reads"]
    assert [(r["peer"], r["unread"], r["via"]) for r in reads] == [(peer, 2, "model"), (other, 1, "model")]
    assert sim.counters()["chat_opens"] == 0 and not page.find_elements(By.CSS_SELECTOR, "#main")
    wait(page).until(lambda d: not d.find_elements(By.CSS_SELECTOR, f"{CHAT_LIST} .unread-badge"))


# ----------------------------------------------------------------------------- modules
OPEN_BY_MODEL = """
const W = req('WAWebWidFactory'), Cmd = req('WAWebCmd').Cmd, Chat = req('WAWebCollections').Chat;
const found = await req('WAWebFindChatAction').findOrCreateLatestChat(W.createWid(arguments[0] + '@c.us'), 'newChatFlow');
const chat = Chat.get(found.chat.id);
const wrong = arguments[1] === 'object' ? chat : {chat: chat, chatEntryPoint: 'Chatlist'};
let error = null;
try { Cmd.openChatBottom(wrong); } catch (e) { error = e.name; }
const ok = arguments[1] === 'object' ? await Cmd.openChatBottom({chat: chat, chatEntryPoint: 'Chatlist'})
                                     : await Cmd.openChatBottom(chat);
return {error: error, ok: ok, created: found.created};
"""


def test_open_chat_bottom_both_shapes_and_hidden_modules(sim, page):
    login(sim, page)
    loads = sim.counters()["page_loads"]
    a, b = "919876500031", "919876500032"
    assert module_call(page, OPEN_BY_MODEL, a, "object") == {"value": {"error": "TypeError", "ok": True, "created": True}}
    wait(page).until(lambda d: d.find_element(By.CSS_SELECTOR, "#main header span[title]").get_attribute("title") == fmt(a))
    find(page, COMPOSE)

    sim.config(open_chat_args="positional")
    wait(page).until(lambda d: module_call(d, "try { req('WAWebCmd').Cmd.openChatBottom({chat: {}}); }"
                                              " catch (e) { return e.name; } return 'no error';") == {"value": "TypeError"}
                     and module_call(d, "try { req('WAWebCmd').Cmd.openChatBottom(null); }"
                                        " catch (e) { return e.message; }") != {"value": "Cannot read properties of undefined (reading 'id')"})
    assert module_call(page, OPEN_BY_MODEL, b, "positional") == {"value": {"error": "TypeError", "ok": True, "created": True}}
    wait(page).until(lambda d: d.find_element(By.CSS_SELECTOR, "#main header span[title]").get_attribute("title") == fmt(b))
    counters = sim.counters()
    assert counters["page_loads"] == loads  # no page load
    assert [(o["peer"], o["in_app"]) for o in counters["chat_open_log"]] == [(a, True), (b, True)]

    # unknown names always throw; with modules: false every WAWeb name does; Debug.VERSION stays
    assert module_call(page, "return req('WAWebNoSuchModule')")["error"] == \
        'Error: Requiring unknown module "WAWebNoSuchModule"'
    sim.config(modules=False, version="2.3000.1031000000")
    wait(page).until(lambda d: "error" in module_call(d, "return req('WAWebCmd')"))
    assert module_call(page, "return req('WAWebSocketModel')")["error"] == \
        'Error: Requiring unknown module "WAWebSocketModel"'
    assert js(page, "return window.Debug.VERSION") == "2.3000.1031000000"
    page.refresh()
    find(page, CHAT_LIST)
    assert "error" in module_call(page, "return req('WAWebCollections')")


def test_wa_me_links_in_page(sim, page):
    login(sim, page)
    peer = "919876500041"

    loads = sim.counters()["page_loads"]
    click_link(page, f"https://wa.me/{peer}?text=hi%20there")
    wait(page).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#main header span[title]")
                     and d.find_element(By.CSS_SELECTOR, "#main header span[title]").get_attribute("title") == fmt(peer))
    assert js(page, "return window.__starting") is True
    gone(page, DIALOG)
    assert find(page, COMPOSE).text == "hi there"
    click_link(page, "https://wa.me/919999999999")
    popup = wait(page).until(lambda d: [p for p in d.find_elements(By.CSS_SELECTOR, DIALOG)
                                        if "Phone number shared via url is invalid." in p.text], "no invalid-number dialog")[0]
    assert popup.get_attribute("aria-label") == "Phone number shared via url is invalid."
    button(page, "OK", DIALOG).click()
    gone(page, DIALOG)
    click_link(page, "https://wa.me/919876500042", nohandle=True)
    assert js(page, "return window.__starting") is False
    counters = sim.counters()
    assert counters["page_loads"] == loads
    assert [(o["peer"], o["in_app"], o["ok"]) for o in counters["chat_open_log"]] == \
        [(peer, True, True), ("919999999999", True, False)]


# ----------------------------------------------------------------------------- composer and media
def test_lexical_composer_takes_only_input_events(sim, page):
    peer = "919876500051"
    login(sim, page)
    box = open_send(sim, page, peer)
    assert box.get_attribute("aria-label") == f"Type to {fmt(peer)}"
    box.send_keys("abc")
    js(page, "arguments[0].textContent = 'HACKED'", box)  # a direct DOM write is reverted
    wait(page).until(lambda d: box.text == "abc")
    js(page, "arguments[0].focus(); document.execCommand('insertText', false, ' def')", box)
    page.execute_cdp_cmd("Input.insertText", {"text": " \U0001F600 \u00e9"})
    ActionChains(page).key_down(Keys.SHIFT).send_keys(Keys.ENTER).key_up(Keys.SHIFT).perform()
    box.send_keys("next")
    js(page, """const dt = new DataTransfer(); dt.setData('text/plain', ' pasted');
                arguments[0].dispatchEvent(new ClipboardEvent('paste', {clipboardData: dt, bubbles: true, cancelable: true}));""",
       box)
    expected = "abc def \U0001F600 \u00e9\nnext pasted"
    wait(page).until(lambda d: box.text == expected)
    box.send_keys(Keys.BACKSPACE * 7)
    wait(page).until(lambda d: box.text == "abc def \U0001F600 \u00e9\nnext")
    box.send_keys(Keys.ENTER)
    eventually(lambda: len(sim.messages(to=peer)) == 1)
    assert sim.messages(to=peer)[0]["text"] == "abc def \U0001F600 \u00e9\nnext"
    assert box.text == "" and not page.find_elements(By.CSS_SELECTOR, '#main footer button[aria-label="Send"]')
    box.send_keys("xyz")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.BACKSPACE)  # select all + Backspace empties it (WebElement.clear() does not)
    wait(page).until(lambda d: box.text == "")
    js(page, "arguments[0].focus(); document.execCommand('insertText', false, 'x\\ny')", box)
    wait(page).until(lambda d: box.text == "x\ny")
    js(page, "arguments[0].focus(); document.execCommand('selectAll'); document.execCommand('delete')", box)
    wait(page).until(lambda d: box.text == "")

    # a DOM write alone sends nothing; a Send click afterwards sends what was typed only
    js(page, "arguments[0].innerHTML = '<p>ghost</p>'", box)
    box.send_keys(Keys.ENTER)
    box.send_keys("real")
    find(page, '#main footer button[aria-label="Send"]').click()
    eventually(lambda: len(sim.messages(to=peer)) == 2)
    assert [m["text"] for m in sim.messages(to=peer)] == ["abc def \U0001F600 \u00e9\nnext", "real"]


def test_attach_sticker_input_order_media_editor_and_limit(sim, page, tmp_path):
    peer = "919876500061"
    sim.config(media_max_mb=0.01)  # 10 KiB: the test image is far below it
    login(sim, page)
    pic = tmp_path / "pic.png"
    Image.new("RGB", (24, 24), (0, 168, 132)).save(pic)
    big = tmp_path / "big.jpg"
    big.write_bytes(os.urandom(40 * 1024))
    open_send(sim, page, peer)
    attach = '#main footer button[aria-label="Attach"][title="Attach"] > span[data-icon="plus-rounded"]'
    find(page, attach).click()
    accepts = [i.get_attribute("accept") for i in page.find_elements(By.CSS_SELECTOR, '#main input[type="file"]')]
    assert accepts == ["*", "image/*", MEDIA_ACCEPT], accepts
    page.find_element(By.CSS_SELECTOR, '#main input[type="file"][accept="image/*"]').send_keys(str(pic))
    caption = find(page, 'div[contenteditable="true"][role="textbox"][data-lexical-editor="true"]'
                         '[aria-placeholder="Add a caption"][aria-label="Add a caption"]')
    caption.send_keys("as sticker")
    find(page, 'div[role="button"][aria-label="Send"] > span[data-icon="wds-ic-send-filled"]').click()
    eventually(lambda: len(sim.messages(to=peer)) == 1)

    find(page, attach).click()
    page.find_element(By.CSS_SELECTOR, f'#main input[type="file"][accept="{MEDIA_ACCEPT}"]').send_keys(str(pic))
    find(page, 'div[aria-placeholder="Add a caption"]').send_keys("a photo", Keys.ENTER)
    eventually(lambda: len(sim.messages(to=peer)) == 2)
    log = sim.messages(to=peer)
    assert [(m["type"], m["sticker"], m["caption"]) for m in log] == [("sticker", True, None), ("image", False, "a photo")]

    find(page, attach).click()
    page.find_element(By.CSS_SELECTOR, f'#main input[type="file"][accept="{MEDIA_ACCEPT}"]').send_keys(str(big))
    assert "0.01 MB limit" in find(page, 'div[role="alert"]').text
    assert not page.find_elements(By.CSS_SELECTOR, 'div[aria-placeholder="Add a caption"]')


# ----------------------------------------------------------------------------- whole screens
def screen_state(page) -> tuple[str, list[str], bool, str]:
    """(text, button labels, MAIN parts present, Socket.state) of what #app shows."""
    app = page.find_element(By.ID, "app")
    return (app.text, [b.text for b in app.find_elements(By.TAG_NAME, "button") if b.is_displayed()],
            bool(page.find_elements(By.CSS_SELECTOR, "#side, #pane-side, #main")),
            js(page, "return window.require('WAWebSocketModel').Socket.state"))


def wait_screen(page, needle: str, timeout: float = 10):
    return wait(page, timeout).until(lambda d: needle in d.find_element(By.ID, "app").text and screen_state(d),
                                     f"no screen with {needle!r}")


def test_whole_screens_replace_main(sim, page):
    peer = "919876500071"
    login(sim, page)
    open_send(sim, page, peer, "kept")

    sim.ok("/sim/control/screen", {"screen": "TEMP_BAN", "code": 101, "duration": "1 hour"})
    text, buttons, main, socket = wait_screen(page, "temporarily banned")
    assert f"don't have {OWN} in their address books" in text
    assert "You'll be able to use WhatsApp again in 1 hour" in text
    assert (buttons, main, socket) == (["Log out", "Learn more"], False, "CONNECTED")
    for code, needle in ((102, "too many people blocked you"), (104, "sent the same message to too many people")):
        sim.ok("/sim/control/screen", {"screen": "TEMP_BAN", "code": code, "duration": "2 hours"})
        wait_screen(page, needle)

    sim.ok("/sim/control/screen", {"screen": "TOS_BLOCK"})
    text, buttons, main, socket = wait_screen(page, 'click "Log in" to continue')
    assert (buttons, main, socket) == (["Log in"], False, "TOS_BLOCK")
    button(page, "Log in").click()
    find(page, COMPOSE)  # back to MAIN with the open chat and its composer text
    assert find(page, COMPOSE).text == "kept"

    sim.ok("/sim/control/screen", {"screen": "APP_LOCKED"})
    wait_screen(page, "WhatsApp is locked")
    page.find_element(By.CSS_SELECTOR, '#app input[type="password"]').send_keys("1234")
    button(page, "Unlock").click()
    find(page, CHAT_LIST)

    sim.ok("/sim/control/connection", {"online": False, "kind": "computer"})
    text, buttons, main, socket = wait_screen(page, "Computer not connected")
    assert (buttons, main, socket) == (["Retry now"], False, "TIMEOUT")
    sim.ok("/sim/control/connection", {"online": True})
    find(page, CHAT_LIST)

    sim.ok("/sim/control/conflict", {"kind": "computer"})
    text, buttons, main, socket = wait_screen(page, "open on another computer or browser")
    assert 'Click "Use here" to use WhatsApp in this window.' in text
    assert (buttons, main, socket) == (["Log out", "Use here"], False, "CONFLICT")
    button(page, "Use here").click()
    find(page, CHAT_LIST)
    wait(page).until(lambda d: js(d, "return window.require('WAWebSocketModel').Socket.state") == "CONNECTED")

    sim.ok("/sim/control/counters/reset")
    sim.ok("/sim/control/conflict", {"kind": "window"})
    text, buttons, main, socket = wait_screen(page, "open in another window")
    assert (buttons, main) == (["Close", "Use here"], False)
    button(page, "Use here").click()  # reloads the page
    find(page, CHAT_LIST)
    eventually(lambda: sim.counters()["loads_by_cause"] == {"self_reload": 1})

    sim.ok("/sim/control/screen", {"screen": "DEPRECATED_VERSION"})
    text, buttons, main, socket = wait_screen(page, "needs to be updated")
    assert (buttons, socket) == (["Refresh"], "DEPRECATED_VERSION")
    assert js(page, "return window.require('WAWebStreamModel').Stream.needsUpdate") is True
    button(page, "Refresh").click()  # reloads the page (the forced screen stays until cleared)
    eventually(lambda: sim.counters()["loads_by_cause"] == {"self_reload": 2})
    wait_screen(page, "needs to be updated")
    sim.ok("/sim/control/screen", {"screen": None})
    find(page, CHAT_LIST)

    # every Log out logs out for real and is recorded
    sim.ok("/sim/control/screen", {"screen": "TEMP_BAN", "code": 104})
    wait_screen(page, "temporarily banned")
    button(page, "Log out").click()
    find(page, QR_CANVAS)
    assert [c["from"] for c in sim.counters()["logout_clicks"]] == ["temp_ban"]
    assert sim.state()["devices"][0]["revoked"]


def test_connecting_popup_while_syncing_offline(sim, page):
    page.get(sim.base + "/")
    payload = current_payload(page)
    sim.ok("/sim/control/connection", {"online": False, "kind": "computer"})
    sim.ok("/sim/phone/scan", {"payload": payload, "phone": OWN})
    popup = find(page, DIALOG)
    assert popup.get_attribute("aria-label") == \
        "Connecting to WhatsApp Make sure your computer has an active internet connection."
    assert [b.text for b in popup.find_elements(By.TAG_NAME, "button")] == ["Log out"]
    assert page.find_elements(By.CSS_SELECTOR, '#app div[data-testid="startup"] progress')
    assert not page.find_elements(By.CSS_SELECTOR, "#side")
    assert js(page, "return window.require('WAWebSocketModel').Socket.state") == "OPENING"
    sim.ok("/sim/control/connection", {"online": True})
    find(page, CHAT_LIST)
    gone(page, DIALOG)
    assert js(page, "return window.require('WAWebSocketModel').Socket.hasSynced") is True


# ----------------------------------------------------------------------------- dialogs and reloads
def test_onboarding_dialog_deep_link_and_self_reloads(sim, page):
    peer = "919876500081"
    sim.config(onboarding=True, onboarding_delay=0.3, onboarding_timeout=60)
    page.get(f"{sim.base}/send?phone={peer}&text=queued")  # held until MAIN
    sim.ok("/sim/phone/scan", {"payload": current_payload(page), "phone": OWN})
    popup = find(page, DIALOG)
    assert popup.get_attribute("aria-label").startswith("What's new on WhatsApp Web ")
    assert popup.find_element(By.CSS_SELECTOR, "div[data-animate-modal-body] > h1").text == "What's new on WhatsApp Web"
    assert find(page, COMPOSE).text == "queued"  # the deep link ran behind the dialog
    assert sim.state()["devices"][0]["onboarding"] == "pending"
    button(page, "Continue", DIALOG).click()
    gone(page, DIALOG)
    eventually(lambda: sim.state()["devices"][0]["onboarding"] == "acknowledged")
    assert [(o["peer"], o["in_app"]) for o in sim.counters()["chat_open_log"]] == [(peer, False)]

    sim.ok("/sim/control/reload", {"cause": "update"})
    eventually(lambda: sim.counters()["loads_by_cause"].get("self_reload") == 1)
    find(page, CHAT_LIST)
    assert not page.find_elements(By.CSS_SELECTOR, DIALOG)
    assert sim.counters()["loads_by_cause"] == {"navigation": 1, "self_reload": 1}

    # logged out from the phone: post_logout=1, old-logout-cred, a new QR
    sim.ok("/sim/phone/logout", {"phone": OWN})
    wait(page).until(lambda d: "post_logout=1" in d.current_url)
    find(page, QR_CANVAS)
    assert js(page, "return localStorage.getItem('last-wid-md')") is None
    assert json.loads(js(page, "return localStorage.getItem('old-logout-cred')"))["reason"] == "phone"


def test_locale_pt_br(sim, page):
    sim.config(locale="pt-BR")
    peer = "919876500091"
    page.get(sim.base + "/")
    find(page, 'div[data-ref] canvas[aria-label="Escaneie este código QR para conectar um dispositivo!"]')
    assert js(page, "return document.documentElement.lang") == "pt-BR"
    payload = page.find_element(By.CSS_SELECTOR, "div[data-ref]").get_attribute("data-ref")
    sim.ok("/sim/phone/scan", {"payload": payload, "phone": OWN})
    find(page, '#pane-side div[aria-label="Lista de conversas"][role="grid"]')
    find(page, '#side input[aria-label="Pesquisar ou começar uma nova conversa"]')
    find(page, '#side button[aria-label="Mais opções"]')
    page.get(f"{sim.base}/send?phone={peer}&text=oi")
    box = find(page, '#main footer div[contenteditable="true"][aria-placeholder="Digite uma mensagem"]')
    assert box.get_attribute("aria-label") == f"Digitar na conversa com {fmt(peer)}"
    find(page, '#main footer button[aria-label="Anexar"][title="Anexar"]')
    find(page, '#main footer button[aria-label="Enviar"]').click()
    status = find(page, "#main div[data-id] .msg-status")
    wait(page).until(lambda d: status_spec(status) == ("wds-ic-read", " Lida ", True))
    sim.ok("/sim/control/screen", {"screen": "TEMP_BAN", "code": 102})
    text, buttons, _, _ = wait_screen(page, "banido temporariamente")
    assert buttons == ["Desconectar", "Saiba mais"]
    sim.ok("/sim/control/screen", {"screen": None})
    find(page, "#pane-side")


def test_unsupported_browser_page(sim, page):
    sim.config(ua_gate=True)  # this Chromium sends "HeadlessChrome"
    page.get(sim.base + "/")
    h1 = find(page, 'div[data-screen="UNSUPPORTED_BROWSER"] h1')
    assert h1.text == "WhatsApp works with Google Chrome 100+"
    assert js(page, "return typeof window.require") == "undefined"
    assert not page.find_elements(By.CSS_SELECTOR, "div[data-ref]")


def test_page_heap_is_kept(sim, page):
    login(sim, page)

    def heap_mb():
        return page.execute_cdp_cmd("Runtime.getHeapUsage", {})["usedSize"] / 1048576

    page.execute_cdp_cmd("HeapProfiler.collectGarbage", {})
    before = heap_mb()
    sim.config(page_heap_mb=24)
    wait(page, 15).until(lambda d: heap_mb() - before >= 23, "the page did not grow its heap")
    page.execute_cdp_cmd("HeapProfiler.collectGarbage", {})
    assert heap_mb() - before >= 23  # still reachable after a collection
    sim.config(page_heap_mb=0)
    wait(page, 15).until(lambda d: (d.execute_cdp_cmd("HeapProfiler.collectGarbage", {}), heap_mb())[1] - before < 8)
