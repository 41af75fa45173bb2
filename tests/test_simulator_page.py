"""End-to-end tests of the WhatsApp Web simulator page with a real headless Chromium.

The simulator runs in a background thread on a free loopback port; Chromium is driven through the
Debian chromedriver. All waits are explicit (WebDriverWait with a deadline). The simulator, the browser
and the waits are shared with test_simulator_page_2026.py (tests/simulator_page_support.py).
"""
from __future__ import annotations

import base64
import io
import json
import os
import re
import time

from PIL import Image
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC

from simulator import SimConfig
from tests.simulator_page_support import (OWN, QR_CANVAS, PageSteps, Sim, click_link, en_us_stamp, eventually,
                                          make_driver, needs_chromium, page_fixtures)

pytestmark = needs_chromium

CHAT_LIST = '#app #side #pane-side [aria-label="Chat list"]'
COMPOSE = '#main footer div[contenteditable="true"][role="textbox"][data-tab="10"]'
FAST = dict(qr_first_ttl=60, qr_ttl=20, qr_count=6, sync_delay=0.2, pair_code_ttl=180,
            deliver_delay=0.3, read_delay=0.3, media_max_mb=16, doc_max_mb=100, latency_ms=0)


# ----------------------------------------------------------------------------- helpers
STEPS = PageSteps(CHAT_LIST, COMPOSE)
wait, find, gone, current_payload, login, open_send = (STEPS.wait, STEPS.find, STEPS.gone, STEPS.current_payload,
                                                       STEPS.login, STEPS.open_send)


def local_storage(driver, *keys: str) -> dict:
    return driver.execute_script(
        "const o = {}; for (const k of arguments[0]) o[k] = localStorage.getItem(k); return o;", list(keys))


def click_text(driver, xpath_text: str, tag: str = "*"):
    el = wait(driver).until(EC.element_to_be_clickable((By.XPATH, f'//{tag}[normalize-space(text())="{xpath_text}"]')))
    el.click()
    return el


def out_row(driver, phone: str):
    return find(driver, f'#main div[data-id^="true_{phone}@c.us_3EB0"].message-out')


# ----------------------------------------------------------------------------- fixtures
# the 2021-23 page; the 2026 one: test_simulator_page_2026.py. page: the shared browser on a clean simulator
# with empty localStorage.
sim, browser, page = page_fixtures(lambda: Sim(SimConfig(port=0, profile="legacy"), defaults=FAST),
                                   profile_prefix="sim-profile-", clear_storage="localStorage.clear()")


# ----------------------------------------------------------------------------- tests
def test_health_and_config(sim):
    assert sim.get("/sim/health").status_code == 200
    sim.reset()
    cfg = sim.config(qr_ttl=0.8, unregistered="911111111111, 912222222222")
    assert cfg["qr_ttl"] == 0.8 and cfg["unregistered"] == ["911111111111", "912222222222"]
    assert sim.post("/sim/control/config", {"nope": 1}).status_code == 400
    assert sim.post("/sim/control/reset").status_code == 200
    assert sim.get("/sim/control/config").json()["qr_ttl"] == 20.0
    env = SimConfig.from_env({"SIM_QR_FIRST_TTL": "1.5", "SIM_QR_COUNT": "2", "SIM_UNREGISTERED": "1,2"})
    assert (env.qr_first_ttl, env.qr_count, env.unregistered) == (1.5, 2, ["1", "2"])


def test_qr_canvas_draws_data_ref(sim, page):
    import zxingcpp

    page.get(sim.base + "/")
    canvas = find(page, ".landing-wrapper " + QR_CANVAS)
    ref = page.find_element(By.CSS_SELECTOR, "div[data-ref]").get_attribute("data-ref")
    parts = ref.split(",")
    assert len(parts) == 4 and re.fullmatch(r"2@[A-Za-z0-9+/=]+", parts[0])
    assert all(len(base64.b64decode(p)) == 32 for p in parts[1:])
    image = Image.open(io.BytesIO(canvas.screenshot_as_png))
    decoded = [r.text for r in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)]
    assert decoded == [ref]
    st = sim.state()
    assert [c["payload"] for c in st["on_screen"]] == [ref]
    assert st["connections"][0]["state"] == "UNPAIRED"
    assert sim.post("/sim/phone/scan", {"payload": "2@nope,a,b,c", "phone": OWN}).status_code == 404


def test_qr_rotation_expiry_and_reload(sim, page):
    sim.config(qr_first_ttl=0.8, qr_ttl=0.5, qr_count=3)
    page.get(sim.base + "/")
    seen: list[str] = []

    def collect(d):
        box = d.find_element(By.CSS_SELECTOR, "div[data-ref]")
        ref = box.get_attribute("data-ref")
        if box.find_elements(By.TAG_NAME, "canvas") and ref and (not seen or seen[-1] != ref):
            seen.append(ref)
        buttons = box.find_elements(By.TAG_NAME, "button")
        return buttons[0] if buttons else False

    button = wait(page, 8).until(collect, "QR never reached the expired state")
    assert button.text == "Click to reload QR code"
    assert not page.find_elements(By.CSS_SELECTOR, "div[data-ref] canvas")
    assert len(seen) == 3 and len(set(seen)) == 3
    assert len({p.split(",", 1)[1] for p in seen}) == 1, "keys must stay fixed per connection"
    conn = sim.state()["connections"][0]
    assert conn["state"] == "UNPAIRED_IDLE"
    assert [p["payload"] for p in conn["payloads"]] == seen
    assert sim.post("/sim/phone/scan", {"payload": seen[-1], "phone": OWN}).status_code == 410

    button.click()
    wait(page).until(lambda d: d.find_elements(By.CSS_SELECTOR, QR_CANVAS)
                     and d.find_element(By.CSS_SELECTOR, "div[data-ref]").get_attribute("data-ref") not in seen)
    assert sim.state()["connections"][0]["state"] == "UNPAIRED"


def test_scan_login_storage_and_menu_logout(sim, page):
    sim.config(sync_delay=1.0)
    page.get(sim.base + "/")
    payload = current_payload(page)
    r = sim.post("/sim/phone/scan", {"payload": payload, "phone": OWN})
    assert r.status_code == 200, r.text
    find(page, "progress", 3)
    find(page, CHAT_LIST)
    find(page, '#side [aria-label="Search or start a new chat"]')
    ls = local_storage(page, "last-wid-md", "WANoiseInfo", "WASimDeviceToken", "old-logout-cred")
    wid = json.loads(ls["last-wid-md"])
    assert re.fullmatch(rf"{OWN}:\d+@c\.us", wid) and wid == r.json()["wid"]
    assert isinstance(json.loads(ls["WANoiseInfo"]), dict)
    assert json.loads(ls["WASimDeviceToken"]) == r.json()["token"]
    assert ls["old-logout-cred"] is None
    st = sim.state()
    assert st["connections"][0]["state"] == "CONNECTED"
    assert st["devices"][0]["wid"] == wid and not st["devices"][0]["revoked"]
    assert sim.post("/sim/phone/scan", {"payload": payload, "phone": OWN}).status_code == 410

    find(page, "#side span[data-icon='menu']").click()
    click_text(page, "Log out", "div")
    find(page, QR_CANVAS)
    assert local_storage(page, "last-wid-md")["last-wid-md"] is None
    assert sim.state()["devices"][0]["revoked"]


def test_login_survives_restart_and_phone_logout_revokes(sim, tmp_path):
    sim.reset()
    profile = str(tmp_path / "profile")
    d1 = make_driver(profile)
    try:
        token = login(sim, d1)["token"]
    finally:
        d1.quit()

    d2 = make_driver(profile)
    try:
        d2.get(sim.base + "/")
        find(d2, CHAT_LIST)
        assert not d2.find_elements(By.CSS_SELECTOR, QR_CANVAS)
        assert sim.post("/sim/phone/logout", {"phone": OWN}).json()["revoked"] == [token]
        wait(d2).until(lambda d: "post_logout=1" in d.current_url)
        find(d2, QR_CANVAS)
        ls = local_storage(d2, "last-wid-md", "WANoiseInfo", "old-logout-cred")
        assert ls["last-wid-md"] is None and ls["WANoiseInfo"] is None and ls["old-logout-cred"]
        token2 = login(sim, d2)["token"]
    finally:
        d2.quit()

    # revoked while the browser was closed: the stored login is dropped on the next start
    assert sim.post("/sim/phone/logout", {"token": token2}).status_code == 200
    d3 = make_driver(profile)
    try:
        d3.get(sim.base + "/")
        find(d3, QR_CANVAS)
        ls = local_storage(d3, "last-wid-md", "WASimDeviceToken", "old-logout-cred")
        assert ls["last-wid-md"] is None and ls["WASimDeviceToken"] is None and ls["old-logout-cred"]
    finally:
        d3.quit()


RECORD_ICONS = """
window.__icons = [];
const seen = {};
const record = () => document.querySelectorAll('#main [data-id^="true_"]').forEach(row => {
  const i = row.querySelector('[data-icon^="msg-"]');
  if (!i) return;
  const v = i.getAttribute('data-icon') + '|' + i.getAttribute('aria-label');
  if (seen[row.dataset.id] !== v) { seen[row.dataset.id] = v; window.__icons.push(v); }
});
new MutationObserver(record).observe(document.querySelector('#main'),
  {subtree: true, childList: true, attributes: true, attributeFilter: ['data-icon', 'aria-label']});
"""


def test_send_text_and_acks(sim, page):
    peer = "919876500001"
    login(sim, page)
    box = open_send(sim, page, peer, "Hello\nworld")
    title = find(page, "#main header span[title]").get_attribute("title")
    assert peer in title
    page.execute_script(RECORD_ICONS)
    before = time.time()
    box.send_keys(Keys.ENTER)
    row = out_row(page, peer)
    assert re.fullmatch(rf"true_{peer}@c\.us_3EB0[0-9A-F]{{20}}", row.get_attribute("data-id"))
    assert row.find_element(By.CSS_SELECTOR, "span.selectable-text").text == "Hello\nworld"
    # The 2021-23 page in en-US stamped rows as now: "[2:10 PM, 6/8/2021] ..." (field code read_file id 1407734506).
    stamp = row.find_element(By.CSS_SELECTOR, "[data-pre-plain-text]").get_attribute("data-pre-plain-text")
    assert stamp in {f"[{en_us_stamp(t)}] You: " for t in (before, time.time())}
    row.find_element(By.CSS_SELECTOR, 'span[data-icon]')  # status icon present at once
    wait(page).until(lambda d: row.find_elements(By.CSS_SELECTOR, 'span[data-icon="msg-dblcheck"][aria-label=" Read "]'))
    icons = page.execute_script("return window.__icons")
    assert [i.split("|")[0] for i in icons] == ["msg-time", "msg-check", "msg-dblcheck", "msg-dblcheck"], icons
    assert icons[-1] == "msg-dblcheck| Read "
    assert len(row.find_elements(By.CSS_SELECTOR, '[data-icon^="msg-"]')) == 1
    assert box.text == ""
    find(page, f'{CHAT_LIST} span[data-icon="msg-dblcheck"][aria-label=" Read "]')  # chat list follows the acks
    msg_id = row.get_attribute("data-id").rsplit("_", 1)[1]
    log = sim.messages(to=peer)
    assert [(m["id"], m["from"], m["to"], m["text"], m["ack_name"]) for m in log] == \
        [(msg_id, OWN, peer, "Hello\nworld", "read")]
    assert log[0]["time"] and isinstance(log[0]["timestamp"], float)

    # Shift+Enter is a line break; the Send button sends
    box.send_keys("line one")
    ActionChains(page).key_down(Keys.SHIFT).send_keys(Keys.ENTER).key_up(Keys.SHIFT).perform()
    box.send_keys("line two")
    find(page, '#main footer button[aria-label="Send"] span[data-icon="send"]').click()
    eventually(lambda: len(sim.messages(to=peer)) == 2)
    assert sim.messages(to=peer)[1]["text"] == "line one\nline two"

    # history is shown when the chat is opened again
    open_send(sim, page, peer)
    wait(page).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, f'#main div[data-id^="true_{peer}@c.us_"]')) == 2)
    assert page.find_element(By.CSS_SELECTOR, f'#main div[data-id="true_{peer}@c.us_{msg_id}"] span.selectable-text').text \
        == "Hello\nworld"


def test_offline_send_stays_pending(sim, page):
    peer = "919876500003"
    login(sim, page)
    box = open_send(sim, page, peer, "while offline")
    sim.post("/sim/control/connection", {"online": False})
    assert "Phone not connected" in find(page, 'div[data-testid="alert-phone"]').text
    box.send_keys(Keys.ENTER)
    row = out_row(page, peer)
    msg_id = row.get_attribute("data-id").rsplit("_", 1)[1]
    eventually(lambda: [m["ack"] for m in sim.messages(all=1) if m["id"] == msg_id] == [0])
    assert sim.messages(to=peer) == []
    assert row.find_element(By.CSS_SELECTOR, "[data-icon^='msg-']").get_attribute("data-icon") == "msg-time"

    sim.post("/sim/control/connection", {"online": True})
    gone(page, 'div[data-testid="alert-phone"]')
    wait(page).until(lambda d: row.find_element(By.CSS_SELECTOR, "[data-icon^='msg-']").get_attribute("data-icon") != "msg-time")
    assert [m["id"] for m in sim.messages(to=peer)] == [msg_id]

    sim.post("/sim/control/connection", {"online": False, "kind": "computer"})
    assert "Computer not connected" in find(page, 'div[data-testid="alert-computer"]').text
    sim.post("/sim/control/connection", {"online": True})
    gone(page, 'div[data-testid="alert-computer"]')


def test_invalid_number_dialog(sim, page):
    login(sim, page)
    for phone in ("919999999999", "12ab34"):
        page.get(f"{sim.base}/send?phone={phone}&text=hi")
        dialog = find(page, 'div[data-animate-modal-popup="true"][role="dialog"]')
        assert "Phone number shared via url is invalid." in dialog.text
        assert not page.find_elements(By.CSS_SELECTOR, COMPOSE)
        dialog.find_element(By.XPATH, './/div[@role="button"][text()="OK"]').click()
        gone(page, 'div[data-animate-modal-popup="true"]')


def test_incoming_message_and_conflict(sim, page):
    peer = "919876500002"
    login(sim, page)
    r = sim.post("/sim/control/incoming", {"from": peer, "text": "Hi there"})
    assert r.status_code == 200, r.text
    in_id = r.json()["messages"][0]["id"]
    find(page, f'{CHAT_LIST} span[title="+{peer}"]')
    find(page, f'{CHAT_LIST} span[aria-label="1 unread message"]').click()
    row = find(page, f'#main div[data-id="false_{peer}@c.us_{in_id}"].message-in')
    assert row.find_element(By.CSS_SELECTOR, "span.selectable-text").text == "Hi there"
    gone(page, f'{CHAT_LIST} span[aria-label="1 unread message"]')
    r = sim.post("/sim/control/incoming", {"from": peer, "text": "Second"})
    find(page, f'#main div[data-id="false_{peer}@c.us_{r.json()["messages"][0]["id"]}"]')

    assert sim.post("/sim/control/conflict", {}).json()["cids"]
    body = find(page, 'div[data-animate-modal-body="true"]')
    assert "open in another window" in body.text
    buttons = body.find_elements(By.CSS_SELECTOR, 'div[role="button"]')
    assert [b.text for b in buttons] == ["Log out", "Use here"]
    buttons[1].click()
    gone(page, 'div[data-animate-modal-body="true"]')
    eventually(lambda: sim.state()["connections"][-1]["state"] == "CONNECTED")


def test_attach_media_and_size_limit(sim, page, tmp_path):
    peer = "919876500004"
    login(sim, page)
    sim.config(media_max_mb=0.01)
    big = tmp_path / "big.jpg"
    big.write_bytes(os.urandom(20 * 1024))
    small = tmp_path / "small.png"
    Image.new("RGB", (24, 24), (0, 168, 132)).save(small)
    doc = tmp_path / "report.pdf"
    doc.write_bytes(b"%PDF-1.4\n" + os.urandom(4000))
    open_send(sim, page, peer)
    media_input = 'input[type="file"][accept="image/*,video/mp4,video/3gpp,video/quicktime"]'

    def attach(css, path):
        find(page, 'div[title="Attach"] span[data-icon="attach-menu-plus"]').click()
        find(page, css).send_keys(str(path))

    attach(media_input, big)
    assert "0.01 MB limit" in find(page, 'div[role="alert"]').text
    assert not page.find_elements(By.CSS_SELECTOR, 'div[aria-label="Add a caption"]')

    attach(media_input, small)
    find(page, 'div[contenteditable="true"][aria-label="Add a caption"]').send_keys("pic caption")
    find(page, 'div[role="button"][aria-label="Send"] span[data-icon="send"]').click()
    row = out_row(page, peer)
    assert row.find_element(By.CSS_SELECTOR, "span.selectable-text").text == "pic caption"
    assert "small.png" in row.text

    attach('input[type="file"][accept="*"]', doc)
    find(page, 'div[contenteditable="true"][aria-label="Add a caption"]').send_keys("the report", Keys.ENTER)
    eventually(lambda: len(sim.messages(to=peer)) == 2)
    log = sim.messages(to=peer)
    assert [(m["type"], m["caption"], m["media"]["name"], m["media"]["size"]) for m in log] == [
        ("image", "pic caption", "small.png", small.stat().st_size),
        ("document", "the report", "report.pdf", doc.stat().st_size),
    ]
    assert log[0]["media"]["mimetype"] == "image/png"
    assert sim.get(f"/sim/control/media/{log[1]['id']}").content == doc.read_bytes()
    wait(page).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, f'#main div[data-id^="true_{peer}@c.us_"]')) == 2)
    assert "report.pdf" in page.find_elements(By.CSS_SELECTOR, "#main .message-out")[-1].text


def test_link_with_phone_number(sim, page):
    sim.config(pair_code_ttl=0.6)
    page.get(sim.base + "/")
    find(page, QR_CANVAS)
    click_text(page, "Link with phone number")
    find(page, 'input[aria-label="Type your phone number."]')
    click_text(page, "Link with QR code")
    find(page, QR_CANVAS)
    click_text(page, "Link with phone number")
    find(page, 'input[aria-label="Type your phone number."]').send_keys("+91 98765 43210")
    page.find_element(By.XPATH, '//button[.//div[text()="Next"]]').click()
    box = find(page, "div[data-link-code]")
    code1 = box.get_attribute("data-link-code").replace(",", "")  # "A,B,C,...", as the real page
    assert re.fullmatch(r"[A-Z0-9]{8}", code1)
    assert box.get_attribute("aria-details") == "link-device-phone-number-code-screen-instructions"
    assert box.text == f"{code1[:4]}-{code1[4:]}"
    assert len(box.find_elements(By.TAG_NAME, "span")) == 9
    # re-issued after the lifetime; then make the next one live long enough to type it
    wait(page).until(lambda d: d.find_element(By.CSS_SELECTOR, "div[data-link-code]").get_attribute("data-link-code").replace(",", "") != code1)
    sim.config(pair_code_ttl=60)

    def long_lived_code():
        pc = sim.state()["connections"][0]["pair_code"]
        return pc["code"] if pc and pc["expires_ts"] - time.time() > 10 else None

    code = eventually(long_lived_code)
    wait(page).until(lambda d: d.find_element(By.CSS_SELECTOR, "div[data-link-code]").get_attribute("data-link-code").replace(",", "") == code)
    assert sim.post("/sim/phone/pair", {"code": code, "phone": "919876500099"}).status_code == 403
    r = sim.post("/sim/phone/pair", {"code": f"{code[:4]}-{code[4:]}", "phone": OWN})
    assert r.status_code == 200, r.text
    find(page, CHAT_LIST)
    assert json.loads(local_storage(page, "last-wid-md")["last-wid-md"]) == r.json()["wid"]


def test_wa_me_link_opens_chat_in_app(sim, page):
    peer = "919876500005"
    login(sim, page)

    click_link(page, f"https://wa.me/{peer}?text=from%20link")
    box = find(page, COMPOSE)
    wait(page).until(lambda d: box.text == "from link")
    assert peer in find(page, "#main header span[title]").get_attribute("title")
    assert page.execute_script("return window.__starting") is True
    gone(page, 'div[data-animate-modal-popup="true"]')
    click_link(page, "https://wa.me/919999999999")
    dialog = wait(page).until(lambda d: [p for p in d.find_elements(By.CSS_SELECTOR, 'div[data-animate-modal-popup="true"]')
                                         if "Phone number shared via url is invalid." in p.text])[0]
    dialog.find_element(By.XPATH, './/div[@role="button"][text()="OK"]').click()
    gone(page, 'div[data-animate-modal-popup="true"]')
    click_link(page, "https://wa.me/919876500006", nohandle=True)
    assert page.execute_script("return window.__starting") is False
    opens = [(o["peer"], o["in_app"]) for o in sim.get("/sim/control/counters").json()["chat_open_log"]]
    assert opens == [(peer, True), ("919999999999", True)]
