"""The linking page in a real headless Chromium on a phone-sized window, against the whole
stack (simulator, recorder, slot worker) and the API served over HTTP (issue 12 item 1),
and initialize answering with the first QR as the seed's client expects (item 6).

Screenshots of the four states go to LINK_PAGE_SCREENSHOTS (default
var/artefacts/link-page/); docs/img/ holds copies that the README shows.
"""
from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import threading
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select
from werkzeug.serving import make_server

from browser.qr import read_qr_data_url
from models import WhatsAppSession
from services.link_tokens import link_secret, make_token
from tests.helpers import ROOT, keyed_client, wait_until
from tests.simulator_page_support import make_driver, needs_chromium
from tests.stack import running_stack

pytestmark = needs_chromium
SHOTS = Path(os.environ.get("LINK_PAGE_SCREENSHOTS", ROOT / "var" / "artefacts" / "link-page"))


@pytest.fixture(scope="module")
def stack(settings, tmp_path_factory, redis_client):
    with running_stack(settings, tmp_path_factory.mktemp("logs"), redis_client) as running:
        yield running


@pytest.fixture(scope="module")
def api(settings, stack, api_key):
    """The API over HTTP (Chromium needs a URL), waiting for the first QR (longer than the
    default 10 s: a first Chromium start on a loaded test machine can take that alone)."""
    from api import create_app

    app = create_app(replace(settings, initialize_qr_wait=30.0))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = keyed_client(app, api_key)
    yield {"base": f"http://127.0.0.1:{server.server_port}", "client": client, "app": app}
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def phone_browser():
    profile = tempfile.mkdtemp(prefix="link-page-")
    driver = make_driver(profile)
    driver.set_window_size(390, 844)  # a phone
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def on_screen_payloads(sim: str) -> set[str]:
    state = requests.get(f"{sim}/sim/control/state", timeout=5).json()
    return {c.get("payload") for c in state.get("connections", []) if c.get("payload")}


def shot(driver, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SHOTS / f"link-page-{name}.png"))


def view(driver, expected: str, timeout: float = 30):
    WebDriverWait(driver, timeout, poll_frequency=0.1).until(
        lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-view") == expected,
        f"the page never showed {expected!r}")


def status_text(driver) -> str:
    return driver.find_element(By.ID, "status").text


def page_payload(driver) -> str | None:
    src = driver.find_element(By.ID, "qr-image").get_attribute("src") or ""
    return read_qr_data_url(src) if src.startswith("data:image/png") else None


def open_link(api, driver, session_id: str) -> str:
    r = api["client"].post(f"/webjs/sessions/{session_id}/link-page")
    assert r.status_code == 200, r.json
    url = api["base"] + urlsplit(r.json["url"]).path  # the test's server, whatever host the app saw
    driver.get(url)
    return url


def test_initialize_answers_qr_ready_then_the_page_shows_the_rotating_qr_and_linked(api, stack, phone_browser,
                                                                                    user_id):
    client, sim, driver = api["client"], stack["sim"], phone_browser
    requests.post(f"{sim}/sim/control/config", json={"qr_first_ttl": 4, "qr_ttl": 4}, timeout=5).raise_for_status()
    try:
        assert client.post("/webjs/sessions", json={"user_id": user_id}).status_code == 201
        # The seed's client: initialize, then one look at the status shows the QR.
        r = client.post(f"/webjs/sessions/{user_id}/initialize")
        assert r.status_code == 200 and r.json["status"] == "QR_READY", r.json
        assert read_qr_data_url(r.json["qr_code"]).startswith("2@")
        assert client.get(f"/webjs/sessions/{user_id}/status").json["status"] == "QR_READY"

        open_link(api, driver, user_id)
        view(driver, "qr")
        driver.execute_script("window.__notReloaded = true")
        first = wait_until(lambda: (p := page_payload(driver)) in on_screen_payloads(sim) and p, 15,
                           what="the page's QR to be the one on the simulator's screen")
        shot(driver, "qr")
        assert status_text(driver) == "Scan this QR code with WhatsApp on your phone."
        img = driver.find_element(By.ID, "qr-image")
        assert img.get_attribute("alt") and img.is_displayed()
        # The page's QR follows the rotation, without a reload.
        wait_until(lambda: (p := page_payload(driver)) != first and p in on_screen_payloads(sim), 20,
                   what="the rotated QR on the page")

        def scanned():  # as a phone would: what the page shows now (it may rotate meanwhile)
            payload = page_payload(driver)
            return payload and requests.post(f"{sim}/sim/phone/scan", json={"payload": payload,
                                                                             "phone": "919812345678"}, timeout=5).ok
        wait_until(scanned, 15, what="a scan of the page's QR")
        view(driver, "linked")
        assert status_text(driver) == "Linked as +91 98123 45678. You can close this page."
        assert driver.execute_script("return window.__notReloaded") is True
        shot(driver, "linked")
        assert client.get(f"/webjs/sessions/{user_id}/status").json["status"] == "READY"
    finally:
        requests.post(f"{sim}/sim/control/config", json={"qr_first_ttl": 60, "qr_ttl": 20}, timeout=5)


def test_the_pairing_code_path_links_the_session(api, stack, phone_browser, user_id):
    client, sim, driver = api["client"], stack["sim"], phone_browser
    assert client.post("/webjs/sessions", json={"user_id": user_id}).status_code == 201
    assert client.post(f"/webjs/sessions/{user_id}/initialize").status_code == 200
    open_link(api, driver, user_id)
    view(driver, "qr")
    driver.execute_script("window.__notReloaded = true")
    driver.find_element(By.ID, "use-phone").click()
    field = driver.find_element(By.ID, "phone")
    assert driver.switch_to.active_element == field, "the number field has the focus"
    label = driver.find_element(By.CSS_SELECTOR, "label[for=phone]").text
    assert label == "Your phone number, with country code"
    field.send_keys("+91 98444 44444")
    driver.find_element(By.ID, "get-code").click()
    view(driver, "pairing")
    code = driver.find_element(By.ID, "pairing-code").text
    assert len(code) == 9 and code[4] == "-"
    assert client.get(f"/webjs/sessions/{user_id}/status").json["pairing_code"] == code
    shot(driver, "pairing")
    assert requests.post(f"{sim}/sim/phone/pair", json={"code": code, "phone": "919844444444"}, timeout=5).ok
    view(driver, "linked")
    assert "+91 98444 44444" in status_text(driver)
    assert driver.execute_script("return window.__notReloaded") is True


def test_an_expired_or_tampered_link_shows_an_error_page(api, phone_browser, user_id):
    client, driver = api["client"], phone_browser
    assert client.post("/webjs/sessions", json={"user_id": user_id}).status_code == 201
    svc = api["app"].extensions["wa"]
    with svc.db() as s:
        row_id = s.execute(select(WhatsAppSession.id).where(WhatsAppSession.session_id == user_id)).scalar_one()
    token = make_token(link_secret(svc.settings.link_page_secret, svc.redis), session_id=user_id, row_id=row_id,
                       expires_at=datetime.now(timezone.utc) - timedelta(seconds=1))
    driver.get(f"{api['base']}/link/{token}")
    error = driver.find_element(By.ID, "link-error")
    assert error.get_attribute("data-kind") == "expired" and error.text == "This link has expired. Ask for a new one."
    shot(driver, "expired")
    r = requests.get(f"{api['base']}/link/{token}", timeout=5)
    assert r.status_code == 410 and r.headers["Cache-Control"] == "no-store"
    driver.get(f"{api['base']}/link/{secrets.token_urlsafe(24)}.{secrets.token_urlsafe(8)}")
    assert driver.find_element(By.ID, "link-error").get_attribute("data-kind") == "invalid"
