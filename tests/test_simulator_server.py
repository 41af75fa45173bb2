"""Server side of the WhatsApp Web simulator (both page profiles), through Flask's test client.

No browser: the page's API calls are made directly. Time is a fake clock put in place of
``SimState.now``, so the time-driven changes (sync, onboarding, revocation, scheduled reload) are
checked exactly and fast.
"""
from __future__ import annotations

import io
import json

import pytest

from simulator import SimConfig, create_app
from simulator.addressing import format_title, lid_for, resolve_locale, ua_refused
from simulator.model import Device

OWN = "919876543210"
PEER = "919876500001"
CHROME = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/131.0.0.0 Safari/537.36")
HEADLESS = CHROME.replace("Chrome/131", "HeadlessChrome/131")


class Clock:
    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


class Sim:
    """A simulator app with a fake clock and small helpers for the page / phone / control calls."""

    def __init__(self, **config) -> None:
        base = dict(boot_seconds=0.2, sync_delay=0.5, deliver_delay=1.0, read_delay=1.0, lid_share=0.0)
        self.app = create_app(SimConfig(**{**base, **config}))
        self.state = self.app.extensions["simulator"]
        self.clock = Clock()
        self.state.now = self.clock
        self.c = self.app.test_client()

    def post(self, path: str, body: dict | None = None, status: int = 200, **kw) -> dict:
        r = self.c.post(path, json=body or {}, **kw)
        assert r.status_code == status, (path, r.status_code, r.get_data(as_text=True))
        return r.get_json()

    def get(self, path: str, **kw) -> dict:
        r = self.c.get(path, **kw)
        assert r.status_code == 200, r.get_data(as_text=True)
        return r.get_json()

    def config(self, **values) -> dict:
        return self.post("/sim/control/config", values)

    def connect(self, token: str | None = None, ua: str = CHROME, lang: str | None = None, **body) -> dict:
        headers = {"User-Agent": ua}
        if lang:
            headers["Accept-Language"] = lang
        return self.post("/sim/api/connect", {"token": token, "path": "/", **body}, headers=headers)

    def poll(self, cid: str, **body) -> dict:
        return self.post("/sim/api/poll", {"cid": cid, "since": 0, "chats_v": None, **body})

    def login(self, phone: str = OWN, **connect) -> tuple[str, str]:
        """A fresh page, scanned by ``phone``, synced to the chat list: (cid, token)."""
        snap = self.connect(**connect)
        r = self.post("/sim/phone/scan", {"payload": snap["qr"]["payload"], "phone": phone})
        self.clock.advance(self.state.config.sync_delay + 0.01)
        assert self.poll(snap["cid"])["state"] == "CONNECTED"
        return snap["cid"], r["token"]

    def conn(self, cid: str) -> dict:
        return next(c for c in self.get("/sim/control/state")["connections"] if c["cid"] == cid)

    def device(self, token: str) -> dict:
        return next(d for d in self.get("/sim/control/state")["devices"] if d["token"] == token)


@pytest.fixture
def sim() -> Sim:
    return Sim()


# ------------------------------------------------------------------------------- knobs
def test_knob_defaults_env_and_validation():
    cfg = SimConfig()
    assert (cfg.profile, cfg.locale, cfg.boot_seconds, cfg.lid_share) == ("2026", "auto", 4.0, 0.5)
    assert (cfg.modules, cfg.open_chat_args, cfg.version) == (True, "object", "2.3000.1030472176")
    assert (cfg.onboarding, cfg.onboarding_delay, cfg.onboarding_timeout) == (True, 1.0, 300.0)
    assert (cfg.cookie_banner, cfg.first_reload_after_link, cfg.ua_gate, cfg.min_chrome) == (True, 300.0, True, 100)
    assert cfg.page_heap_mb == 0 and cfg.lid_numbers == [] and cfg.pn_numbers == []

    env = SimConfig.from_env({"SIM_PROFILE": "LEGACY", "SIM_LOCALE": "pt_BR", "SIM_MODULES": "false",
                              "SIM_LID_NUMBERS": "+91 98765 00001, 919876500002", "SIM_PN_NUMBERS": "1234567",
                              "SIM_OPEN_CHAT_ARGS": "positional", "SIM_UA_GATE": "0", "SIM_MIN_CHROME": "120",
                              "SIM_FIRST_RELOAD_AFTER_LINK": "-1", "SIM_PAGE_HEAP_MB": "64"})
    assert env.profile == "legacy" and env.locale == "pt-BR" and env.modules is False
    assert env.lid_numbers == ["919876500001", "919876500002"] and env.pn_numbers == ["1234567"]
    assert (env.open_chat_args, env.ua_gate, env.min_chrome) == ("positional", False, 120)
    assert env.first_reload_after_link == -1 and env.page_heap_mb == 64

    sim = Sim()
    got = sim.config(profile="legacy", lid_share=1, modules=False, locale="en-US", version="2.3000.1017054665")
    assert (got["profile"], got["lid_share"], got["modules"], got["locale"]) == ("legacy", 1.0, False, "en")
    for bad in ({"profile": "2025"}, {"lid_share": 1.5}, {"open_chat_args": "kwargs"}, {"version": "a b"},
                {"modules": "maybe"}, {"locale": "fr"}, {"boot_seconds": -1}, {"onboarding_timeout": 0},
                {"min_chrome": 0}, {"page_heap_mb": -1}, {"boot_seconds": "nan"}, {"ua_gate": "sometimes"}):
        r = sim.c.post("/sim/control/config", json=bad)
        assert r.status_code == 400 and r.get_json()["error"] == "bad_config", bad
    assert sim.get("/sim/control/config")["profile"] == "legacy"  # bad values changed nothing
    sim.post("/sim/control/reset")
    assert sim.get("/sim/control/config")["profile"] == "2026"


def test_page_config_for_the_html(sim):
    pc = sim.state.page_config(CHROME, "pt-BR,pt;q=0.9,en;q=0.5")
    assert pc["profile"] == "2026" and pc["locale"] == "pt-BR" and pc["unsupported"] is None
    assert pc["boot_seconds"] == 0.2 and abs(sum(s["seconds"] for s in pc["boot_stages"]) - 0.2) < 1e-3
    assert [s["stage"] for s in pc["boot_stages"]] == ["INITIAL_LOAD", "CONNECTING", "DOWNLOADING", "PAUSE",
                                                        "ORGANIZING"]
    assert sim.state.page_config(HEADLESS, None)["unsupported"] == {"min_chrome": 100}
    sim.config(profile="legacy")
    pc = sim.state.page_config(HEADLESS, "pt-BR")
    assert pc["profile"] == "legacy" and pc["locale"] == "en" and pc["unsupported"] is None
    html = sim.c.get("/", headers={"User-Agent": CHROME}).get_data(as_text=True)
    assert 'id="app"' in html


# ------------------------------------------------------------------------ ids and LIDs
def test_lid_choice_is_deterministic_and_follows_the_knobs(sim):
    lid = lid_for(PEER)
    assert lid == lid_for(PEER) and len(lid) == 15 and lid[0] != "0" and lid != lid_for(OWN)
    st = sim.state
    assert not st._uses_lid(PEER, "2026")  # lid_share 0
    sim.config(lid_numbers=PEER)
    assert st._uses_lid(PEER, "2026") and not st._uses_lid(PEER, "legacy")
    sim.config(pn_numbers=PEER)
    assert not st._uses_lid(PEER, "2026")  # pn_numbers wins
    sim.config(lid_numbers=[], pn_numbers=[], lid_share=1.0)
    assert st._uses_lid(PEER, "2026")
    assert not st._uses_lid("919999999999", "2026")  # unregistered numbers have no LID
    sim.config(lid_share=0.5)
    numbers = [f"9198765{i:05d}" for i in range(400)]
    share = sum(st._uses_lid(n, "2026") for n in numbers) / len(numbers)
    assert 0.4 < share < 0.6
    assert [st._uses_lid(n, "2026") for n in numbers] == [st._uses_lid(n, "2026") for n in numbers]


def test_lid_chat_ids_in_page_and_log(sim):
    sim.config(lid_numbers=PEER)
    cid, token = sim.login()
    snap = sim.poll(cid)
    assert snap["me"] == {"pn": OWN, "lid": lid_for(OWN)} and snap["login"]["lid"] == lid_for(OWN)
    lid = lid_for(PEER)
    wid = f"{lid}@lid"

    opened = sim.post("/sim/api/chat/open", {"cid": cid, "phone": PEER, "in_app": True})["chat"]
    assert opened["wid"] == wid and opened["id"] == wid and opened["lid"] == lid and opened["phone"] == PEER
    assert opened["title"] == "+91 98765 00001"
    # the LID wid opens the same chat
    assert sim.post("/sim/api/chat/open", {"cid": cid, "wid": wid, "in_app": True})["chat"]["phone"] == PEER

    mid = "3EB0" + "A1" * 10
    sent = sim.post("/sim/api/send", {"cid": cid, "to": wid, "id": mid, "text": "hello"})
    assert sent["serialized"] == f"true_{wid}_{mid}"
    log = sim.get("/sim/control/messages")
    assert log[0]["to"] == PEER and log[0]["chat"] == wid and log[0]["serialized"] == f"true_{wid}_{mid}"
    assert log[0]["sticker"] is False
    assert sim.get(f"/sim/control/messages?to={PEER}") == log

    chats = sim.poll(cid)["chats"]
    assert chats[0]["wid"] == wid and chats[0]["last"]["data_id"] == f"true_{wid}_{mid}"
    msgs = sim.post("/sim/api/chat/open", {"cid": cid, "phone": PEER})["chat"]["messages"]
    assert msgs[0]["data_id"] == f"true_{wid}_{mid}" and msgs[0]["chat"] == wid

    # an incoming message from that number uses the LID chat too
    inc = sim.post("/sim/control/incoming", {"from": PEER, "text": "hi", "to": OWN})["messages"][0]
    assert inc["serialized"] == f"false_{wid}_{inc['id']}"
    events = sim.poll(cid, since=0)["events"]
    assert events[-1]["wid"] == wid and events[-1]["chat"] == PEER
    assert events[-1]["msg"]["data_id"] == f"false_{wid}_{inc['id']}"

    # a PN number in the same account keeps the c.us form
    other = "919876500002"
    chat = sim.post("/sim/api/chat/open", {"cid": cid, "phone": other})["chat"]
    assert chat["wid"] == f"{other}@c.us" and chat["lid"] is None


def test_legacy_profile_keeps_the_old_ids_and_titles():
    sim = Sim(profile="legacy", lid_share=1.0)
    snap = sim.connect(ua=HEADLESS)  # no user-agent gate in legacy
    assert snap["screen"] is None and snap["qr"]["payload"].count(",") == 3
    cid, _ = sim.login()
    assert sim.poll(cid)["me"] == {"pn": OWN, "lid": None}
    chat = sim.post("/sim/api/chat/open", {"cid": cid, "phone": PEER})["chat"]
    assert chat["id"] == f"{PEER}@c.us" and chat["title"] == f"+{PEER}" and chat["lid"] is None
    mid = "3EB0" + "B2" * 10
    sim.post("/sim/api/send", {"cid": cid, "to": PEER, "id": mid, "text": "x"})
    assert sim.get("/sim/control/messages")[0]["serialized"] == f"true_{PEER}@c.us_{mid}"
    assert sim.post("/sim/control/reload", {})["cids"] == []  # legacy pages cannot self-reload
    assert sim.poll(cid)["onboarding"] is None


def test_titles_are_grouped_like_unsaved_numbers():
    assert format_title("919876543210") == "+91 98765 43210"
    assert format_title("5511987654321") == "+55 11 98765-4321"
    assert format_title("999123456789").startswith("+99")  # no such country: simple grouping
    assert format_title("999123456789").replace(" ", "") == "+999123456789"


def test_qr_payload_has_five_fields_and_the_phone_takes_four_or_five(sim):
    snap = sim.connect()
    fields = snap["qr"]["payload"].split(",")
    assert len(fields) == 5 and fields[4] == "WEB" and fields[0].startswith("2@")
    r = sim.post("/sim/phone/scan", {"payload": ",".join(fields[:4]), "phone": OWN})
    assert r["cid"] == snap["cid"]
    snap2 = sim.connect()
    assert sim.post("/sim/phone/scan", {"payload": snap2["qr"]["payload"], "phone": "919876543211"})["ok"]
    # shown before, used now: both forms are "expired"
    sim.post("/sim/phone/scan", {"payload": ",".join(fields[:4]), "phone": OWN}, status=410)
    sim.post("/sim/phone/scan", {"payload": ",".join(fields), "phone": OWN}, status=410)
    sim.post("/sim/phone/scan", {"payload": "2@nope,a,b,c,WEB", "phone": OWN}, status=404)


# ------------------------------------------------------------------------ screens
def test_temp_ban_screen_blocks_sending_and_survives_a_reload(sim):
    cid, token = sim.login()
    r = sim.post("/sim/control/screen", {"screen": "TEMP_BAN", "code": 102, "duration": "2 hours", "phone": OWN})
    assert r["cids"] == [cid]
    snap = sim.poll(cid)
    assert snap["screen"] == "TEMP_BAN" and snap["screen_info"] == {"code": 102, "duration": "2 hours"}
    assert snap["socket_state"] == "CONNECTED" and snap["state"] == "CONNECTED"
    err = sim.post("/sim/api/send", {"cid": cid, "to": PEER, "id": "3EB0" + "C3" * 10, "text": "x"}, status=409)
    assert err["error"] == "screen_blocked"
    sim.post("/sim/api/disconnect", {"cid": cid})
    again = sim.connect(token=token, load_cause="reload")
    assert again["screen"] == "TEMP_BAN"
    assert sim.conn(again["cid"])["screen"] == "TEMP_BAN"
    sim.post("/sim/control/screen", {"screen": None, "phone": OWN})
    snap = sim.poll(again["cid"])
    assert snap["screen"] is None and snap["socket_state"] == "CONNECTED"
    sim.post("/sim/api/send", {"cid": again["cid"], "to": PEER, "id": "3EB0" + "C4" * 10, "text": "x"})
    sim.post("/sim/control/screen", {"screen": "BANNED"}, status=400)
    sim.post("/sim/control/screen", {"screen": "TEMP_BAN", "code": "soon"}, status=400)


def test_account_screens_socket_states_and_their_buttons(sim):
    cid, token = sim.login()
    sim.post("/sim/control/screen", {"screen": "TOS_BLOCK", "token": token})
    snap = sim.poll(cid)
    assert (snap["screen"], snap["socket_state"]) == ("TOS_BLOCK", "TOS_BLOCK")
    after = sim.post("/sim/api/screen/action", {"cid": cid, "action": "log_in"})
    assert after["screen"] is None and after["socket_state"] == "CONNECTED"

    sim.post("/sim/control/screen", {"screen": "APP_LOCKED", "cid": cid})
    assert sim.poll(cid)["socket_state"] == "CONNECTED" and sim.poll(cid)["screen"] == "APP_LOCKED"
    assert sim.post("/sim/api/screen/action", {"cid": cid, "action": "unlock"})["screen"] is None

    sim.post("/sim/control/screen", {"screen": "OFFLINE", "cid": cid})
    snap = sim.poll(cid)
    assert (snap["screen"], snap["socket_state"]) == ("OFFLINE", "TIMEOUT")
    sim.post("/sim/control/screen", {"screen": "CONNECTING", "cid": cid})
    assert sim.poll(cid)["socket_state"] == "OPENING"
    sim.post("/sim/control/screen", {"screen": None})  # no selector: clears all

    # DEPRECATED_VERSION shows on the login page too; TEMP_BAN needs a login
    login_page = sim.connect()
    sim.post("/sim/control/screen", {"screen": "DEPRECATED_VERSION"})
    snap = sim.poll(login_page["cid"])
    assert (snap["screen"], snap["socket_state"]) == ("DEPRECATED_VERSION", "DEPRECATED_VERSION")
    assert sim.poll(cid)["screen"] == "DEPRECATED_VERSION"
    sim.post("/sim/control/screen", {"screen": "TEMP_BAN"})
    assert sim.poll(login_page["cid"])["screen"] is None and sim.poll(cid)["screen"] == "TEMP_BAN"
    sim.post("/sim/api/screen/action", {"cid": cid, "action": "explode"}, status=400)
    actions = sim.get("/sim/control/counters")["screen_actions"]
    assert [(a["action"], a["screen"]) for a in actions] == [("log_in", "TOS_BLOCK"), ("unlock", "APP_LOCKED")]
    assert sim.get("/sim/control/state")["screens"]["all"]["screen"] == "TEMP_BAN"


def test_second_page_puts_the_older_on_another_session(sim):
    cid1, token = sim.login()
    second = sim.connect(token=token)
    assert second["state"] == "CONNECTED" and second["screen"] is None
    older = sim.poll(cid1)
    assert (older["screen"], older["socket_state"], older["state"]) == ("ANOTHER_SESSION", "CONFLICT", "CONFLICT")
    sim.post("/sim/api/send", {"cid": cid1, "to": PEER, "id": "3EB0" + "D5" * 10, "text": "x"}, status=409)
    # Use here on ANOTHER_SESSION: the page reloads; the new load wins
    sim.post("/sim/api/screen/action", {"cid": cid1, "action": "use_here"})
    sim.post("/sim/api/disconnect", {"cid": cid1})
    third = sim.connect(token=token, load_cause="reload")
    assert third["screen"] is None
    assert sim.poll(second["cid"])["screen"] == "ANOTHER_SESSION"

    # another computer: CONFLICT; Use here takes over
    r = sim.post("/sim/control/conflict", {"token": token, "kind": "computer"})
    assert r["cids"] == [third["cid"]]
    snap = sim.poll(third["cid"])
    assert (snap["screen"], snap["socket_state"]) == ("CONFLICT", "CONFLICT")
    back = sim.post("/sim/api/screen/action", {"cid": third["cid"], "action": "use_here"})
    assert back["screen"] is None and back["state"] == "CONNECTED"
    sim.post("/sim/control/conflict", {"kind": "window"})
    assert sim.poll(third["cid"])["screen"] == "ANOTHER_SESSION"
    sim.post("/sim/control/conflict", {"kind": "tab"}, status=400)


def test_legacy_second_page_keeps_the_conflict_modal():
    sim = Sim(profile="legacy")
    cid1, token = sim.login()
    sim.connect(token=token)
    old = sim.poll(cid1)
    assert old["state"] == "CONFLICT" and old["screen"] is None and old["socket_state"] == "CONFLICT"


def test_offline_is_offline_screen_after_main_and_connecting_before(sim):
    cid, token = sim.login()
    sim.post("/sim/control/connection", {"online": False, "kind": "phone"})
    snap = sim.poll(cid)
    assert (snap["screen"], snap["socket_state"]) == ("OFFLINE", "TIMEOUT")
    assert snap["screen_info"] == {"kind": "phone"}
    # a reload while offline: stuck behind "Connecting to WhatsApp"
    sim.post("/sim/api/disconnect", {"cid": cid})
    page = sim.connect(token=token, load_cause="reload")
    assert (page["screen"], page["socket_state"]) == ("CONNECTING", "OPENING")
    sim.post("/sim/control/connection", {"online": True})
    snap = sim.poll(page["cid"])
    assert snap["screen"] is None and snap["socket_state"] == "CONNECTED"

    # a scan while offline: the sync waits
    sim.post("/sim/control/connection", {"online": False, "kind": "computer"})
    fresh = sim.connect()
    sim.post("/sim/phone/scan", {"payload": fresh["qr"]["payload"], "phone": "919876543299"})
    sim.clock.advance(5)
    snap = sim.poll(fresh["cid"])
    assert (snap["state"], snap["screen"], snap["socket_state"]) == ("PAIRING", "CONNECTING", "OPENING")
    sim.post("/sim/control/connection", {"online": True})
    snap = sim.poll(fresh["cid"])
    assert snap["state"] == "CONNECTED" and snap["screen"] is None


def test_legacy_offline_stays_a_banner():
    sim = Sim(profile="legacy")
    cid, _ = sim.login()
    sim.post("/sim/control/connection", {"online": False})
    snap = sim.poll(cid)
    assert snap["state"] == "TIMEOUT" and snap["offline"] == "phone" and snap["screen"] is None


# ---------------------------------------------------------------------- user agents
@pytest.mark.parametrize("ua", [
    HEADLESS,
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Electron/28.0.0 Safari/537.36",
    "WhatsApp/2.2400.3 " + CHROME,
    CHROME.replace("Chrome/131", "Chrome/99"),
])
def test_refused_user_agents_get_the_unsupported_page(sim, ua):
    assert ua_refused(ua, 100)
    for path in ("/", f"/send?phone={PEER}&text=hi"):
        r = sim.c.get(path, headers={"User-Agent": ua})
        html = r.get_data(as_text=True)
        assert r.status_code == 200 and "WhatsApp works with Google Chrome 100+" in html
        assert "<script" not in html and 'id="app"' not in html
    snap = sim.connect(ua=ua)
    assert snap["screen"] == "UNSUPPORTED_BROWSER" and snap["screen_info"] == {"min_chrome": 100}
    assert snap["socket_state"] == "UNLAUNCHED" and snap["qr"] is None and snap["mode"] == "unsupported"
    sim.post("/sim/api/mode", {"cid": snap["cid"], "mode": "phone"}, status=409)
    assert sim.get("/sim/control/counters")["unsupported_pages"] == 2


def test_user_agent_gate_knobs(sim):
    assert not ua_refused(CHROME, 100) and not ua_refused("Mozilla/5.0 Firefox/128.0", 100)
    assert "WhatsApp works" not in sim.c.get("/", headers={"User-Agent": CHROME}).get_data(as_text=True)
    sim.config(min_chrome=140)
    html = sim.c.get("/", headers={"User-Agent": CHROME, "Accept-Language": "pt-BR"}).get_data(as_text=True)
    assert "Google Chrome 140+" in html and 'lang="pt-BR"' in html
    sim.config(ua_gate=False)
    assert "WhatsApp works" not in sim.c.get("/", headers={"User-Agent": HEADLESS}).get_data(as_text=True)
    assert sim.connect(ua=HEADLESS)["screen"] is None


# ------------------------------------------------------------------------ locale
def test_locale_from_knob_page_language_and_accept_language(sim):
    assert resolve_locale("auto", None, "pt-BR,pt;q=0.9") == "pt-BR"
    assert resolve_locale("auto", None, "en;q=0.5, pt-PT;q=0.8") == "pt-BR"
    assert resolve_locale("auto", "en-US", "pt-BR") == "en"
    assert resolve_locale("pt-BR", "en-US", None) == "pt-BR"
    assert sim.connect(lang="pt-BR,pt;q=0.9")["locale"] == "pt-BR"
    assert sim.connect(lang="pt-BR", language="en-GB")["locale"] == "en"
    assert sim.connect()["locale"] == "en"
    sim.config(locale="pt-BR")
    page = sim.connect(lang="en-US")
    assert page["locale"] == "pt-BR" and sim.conn(page["cid"])["locale"] == "pt-BR"
    sim.config(profile="legacy")
    assert sim.connect(lang="pt-BR")["locale"] == "en"


# -------------------------------------------------------------- onboarding, reloads
def test_onboarding_shows_after_the_delay_and_continue_keeps_the_device(sim):
    sim.config(onboarding_delay=2, onboarding_timeout=30, first_reload_after_link=-1)
    cid, token = sim.login()
    assert sim.poll(cid)["onboarding"] is None
    sim.clock.advance(1)
    assert sim.poll(cid)["onboarding"] is None
    sim.clock.advance(1.1)
    assert sim.poll(cid)["onboarding"] == {"show": True}
    assert sim.conn(cid)["onboarding"] == "pending" and sim.device(token)["onboarding"] == "pending"
    assert sim.post("/sim/api/onboarding/ack", {"cid": cid}) == {"ok": True, "onboarding": "acknowledged"}
    assert sim.poll(cid)["onboarding"] is None
    for _ in range(8):
        sim.clock.advance(5)
        snap = sim.poll(cid)
    assert not snap["logged_out"] and snap["state"] == "CONNECTED"
    assert sim.device(token)["onboarding"] == "acknowledged" and not sim.device(token)["revoked"]


def test_unacknowledged_onboarding_revokes_the_device(sim):
    sim.config(onboarding_delay=1, onboarding_timeout=10, first_reload_after_link=-1)
    cid, token = sim.login()
    sim.clock.advance(1.0)
    assert sim.poll(cid)["onboarding"] == {"show": True}
    shown_at = sim.clock.t - 0.0
    sim.clock.advance(9.5)
    snap = sim.poll(cid)
    assert not snap["logged_out"] and snap["onboarding"] == {"show": True}
    sim.clock.advance(0.6)
    snap = sim.poll(cid)
    assert snap["logged_out"] and snap["logout_reason"] == "onboarding" and snap["state"] == "UNPAIRED"
    assert snap["socket_state"] == "UNPAIRED"
    dev = sim.device(token)
    assert dev["revoked"] and dev["revoke_reason"] == "onboarding" and dev["onboarding"] == "revoked"
    assert sim.conn(cid)["onboarding"] == "revoked"
    assert sim.connect(token=token)["token_status"] == "revoked"
    assert sim.clock.t - shown_at >= 10


def test_onboarding_only_for_fresh_2026_links(sim):
    sim.config(onboarding=False)
    cid, token = sim.login()
    sim.clock.advance(2)
    assert sim.poll(cid)["onboarding"] is None and sim.device(token)["onboarding"] is None
    legacy = Sim(profile="legacy", onboarding_timeout=1)
    cid, token = legacy.login()
    legacy.clock.advance(5)
    assert legacy.poll(cid)["onboarding"] is None and not legacy.poll(cid)["logged_out"]


def test_scheduled_reload_once_after_a_fresh_link(sim):
    sim.config(first_reload_after_link=5, onboarding=False)
    cid, token = sim.login()
    assert sim.poll(cid)["reload"] is None
    sim.clock.advance(5)
    snap = sim.poll(cid)
    assert snap["reload"]["cause"] == "scheduled" and isinstance(snap["reload"]["id"], int)
    assert sim.poll(cid)["reload"] == snap["reload"]  # stays until the page goes
    sim.post("/sim/api/disconnect", {"cid": cid})
    page = sim.connect(token=token, load_cause="self_reload")
    sim.clock.advance(60)
    assert sim.poll(page["cid"])["reload"] is None
    counters = sim.get("/sim/control/counters")
    assert counters["loads_by_cause"]["self_reload"] == 1
    assert [r["cause"] for r in counters["reloads"]] == ["scheduled"]

    # an update reload a test triggers, per selector
    r = sim.post("/sim/control/reload", {"token": token, "cause": "update"})
    assert r["cids"] == [page["cid"]]
    got = sim.poll(page["cid"])["reload"]
    assert got["cause"] == "update" and got["id"] > snap["reload"]["id"]
    sim.post("/sim/control/reload", {"cause": "whenever"}, status=400)


# ------------------------------------------------------------------------ counters
def test_counters_of_loads_opens_and_logout_clicks(sim):
    first = sim.connect(load_cause="navigation")
    sim.connect(load_cause="back_forward")
    cid, token = sim.login()  # a third load, linked
    sim.post("/sim/api/cookies/accept", {"cid": first["cid"]})
    sim.post("/sim/api/chat/open", {"cid": cid, "phone": PEER, "in_app": True})
    sim.post("/sim/api/chat/open", {"cid": cid, "phone": PEER, "in_app": False})
    sim.post("/sim/api/chat/open", {"cid": cid, "phone": "919999999999", "in_app": True})  # invalid, still an open
    sim.post("/sim/api/exists", {"cid": cid, "phone": PEER})
    c = sim.get("/sim/control/counters")
    assert c["page_loads"] == 3 and c["loads_by_cause"] == {"navigation": 2, "back_forward": 1}
    assert c["chat_opens"] == 2 and c["deep_link_opens"] == 1 and c["exists_queries"] == 1
    dev = next(d for d in c["devices"] if d["token"] == token)
    assert dev["page_loads"] == 1 and dev["chat_opens"] == 2 and dev["loads"][0]["cause"] == "navigation"
    assert dev["loads"][0]["path"] == "/"
    assert c["unlinked"]["page_loads"] == 2
    assert c["cookies"][0]["accepted"] is True and c["logout_clicks"] == []

    sim.post("/sim/api/logout", {"cid": cid, "from": "conflict"})
    c = sim.get("/sim/control/counters")
    click = c["logout_clicks"][0]
    assert (click["cid"], click["token"], click["phone"], click["from"]) == (cid, token, OWN, "conflict")
    assert sim.device(token)["revoke_reason"] == "web"
    assert sim.poll(cid)["logout_reason"] == "web"
    sim.post("/sim/control/counters/reset")
    assert sim.get("/sim/control/counters")["page_loads"] == 0


def test_state_view_has_the_new_fields(sim):
    cid, token = sim.login()
    conn = sim.conn(cid)
    for key in ("screen", "socket_state", "locale", "profile", "onboarding", "load_cause", "me", "reload"):
        assert key in conn
    assert conn["profile"] == "2026" and conn["socket_state"] == "CONNECTED" and conn["onboarding"] == "pending"
    dev = sim.device(token)
    assert dev["onboarding"] == "pending" and dev["lid"] == lid_for(OWN) and dev["profile"] == "2026"


# ------------------------------------------------------------------ exists, stickers
def test_exists_query(sim):
    sim.config(lid_numbers=PEER)
    cid, _ = sim.login()
    assert sim.post("/sim/api/exists", {"cid": cid, "phone": PEER}) == \
        {"wid": f"{PEER}@c.us", "lid": lid_for(PEER), "phone": PEER}
    assert sim.post("/sim/api/exists", {"cid": cid, "phone": "+91 98765 00002"})["lid"] is None
    assert sim.post("/sim/api/exists", {"cid": cid, "wid": "919876500002@c.us"})["wid"] == "919876500002@c.us"
    assert sim.post("/sim/api/exists", {"cid": cid, "phone": "919999999999"})["wid"] is None
    assert sim.post("/sim/api/exists", {"cid": cid, "phone": "12"})["wid"] is None
    sim.post("/sim/api/exists", {"cid": "nope", "phone": PEER}, status=404)


@pytest.mark.parametrize("profile", ["2026", "legacy"])
def test_new_chats_past_the_link_limit_get_the_invalid_number_answer(sim, profile):
    """A registered number past ``link_limit`` is refused like an unregistered one when its
    (new) chat is opened, while the existence query still answers it; chats opened within
    the limit and chats with messages stay open-able; -1 lifts it."""
    sim.config(profile=profile, link_limit=1)
    cid, _ = sim.login()
    first, second, third = PEER, "919876500002", "919876500003"
    assert sim.post("/sim/api/chat/open", {"cid": cid, "phone": first, "in_app": True})["ok"]
    refused = sim.post("/sim/api/chat/open", {"cid": cid, "phone": second, "in_app": True})
    assert refused == {"ok": False, "invalid": True, "phone": second}
    assert not sim.post("/sim/api/chat/open", {"cid": cid, "phone": second, "in_app": False})["ok"]
    assert sim.post("/sim/api/exists", {"cid": cid, "phone": second})["wid"] == f"{second}@c.us"
    assert sim.post("/sim/api/chat/open", {"cid": cid, "phone": first, "in_app": True})["ok"]  # counted once
    sim.post("/sim/control/incoming", {"to": OWN, "from": third, "text": "hello"})
    assert sim.post("/sim/api/chat/open", {"cid": cid, "phone": third, "in_app": True})["ok"]  # not a new chat
    log = sim.get("/sim/control/counters")["chat_open_log"]
    assert [o["ok"] for o in log if o["peer"] == second] == [False, False]
    sim.config(link_limit=-1)
    assert sim.post("/sim/api/chat/open", {"cid": cid, "phone": second, "in_app": True})["ok"]
    r = sim.c.post("/sim/control/config", json={"link_limit": -2})
    assert r.status_code == 400 and r.get_json()["error"] == "bad_config"


def test_stickers(sim):
    cid, _ = sim.login()
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 100

    def upload(name, data, **form):
        fields = {"cid": cid, "to": PEER, "kind": "media", "file": (io.BytesIO(data), name), **form}
        return sim.c.post("/sim/api/send-media", data=fields, content_type="multipart/form-data")

    r = upload("s.png", png, id="3EB0" + "E6" * 10, sticker="true", caption="ignored")
    assert r.status_code == 200, r.get_data(as_text=True)
    r = upload("k.png", png, id="3EB0" + "E7" * 10, kind="sticker")
    assert r.status_code == 200
    r = upload("p.png", png, id="3EB0" + "E8" * 10, sticker="false")
    assert r.status_code == 200
    r = upload("v.mp4", b"0" * 50, id="3EB0" + "E9" * 10, sticker="true")
    assert r.status_code == 400 and r.get_json()["error"] == "bad_sticker"
    import base64
    sim.post("/sim/api/send", {"cid": cid, "to": PEER, "id": "3EB0" + "EA" * 10, "sticker": True,
                               "data": base64.b64encode(png).decode(), "name": "m.webp"})
    log = sim.get("/sim/control/messages")
    assert [(m["type"], m["sticker"]) for m in log] == [("sticker", True), ("sticker", True), ("image", False),
                                                        ("sticker", True)]
    assert log[0]["caption"] is None and log[0]["media"]["kind"] == "sticker"


# ----------------------------------------------------------------------- persistence
def test_linked_devices_outlive_a_restart_only_with_a_state_file(tmp_path):
    """SIM_STATE_FILE (what make demo sets): a restarted simulator still accepts a login it
    linked; unset (the default, what the tests use), a new simulator knows nothing of it."""
    path = tmp_path / "devices.json"
    assert SimConfig.from_env({}).state_file is None
    assert SimConfig.from_env({"SIM_STATE_FILE": str(path)}).state_file == str(path)
    _cid, token = Sim(state_file=str(path)).login()
    assert Sim(state_file=str(path)).connect(token=token)["token_status"] == "valid"
    assert Sim().connect(token=token)["token_status"] != "valid"


def test_old_state_files_still_load(tmp_path):
    path = tmp_path / "state.json"
    old = {"token": "t1", "phone": OWN, "device": 1, "wid": f"{OWN}:1@c.us", "created": 1.0, "via": "qr",
           "noise_info": {}, "revoked_at": None, "revoke_reason": None}
    path.write_text(json.dumps({"devices": [old], "device_counter": {OWN: 1}}))
    sim = Sim(state_file=str(path))
    assert sim.connect(token="t1")["token_status"] == "valid"
    assert Device.from_json({**old, "future_field": 1}).profile == "legacy"
    cid, token = sim.login("919876543211")
    saved = json.loads(path.read_text())
    assert next(d for d in saved["devices"] if d["token"] == token)["onboarding"] == "pending"


def test_incoming_types_quotes_and_lid_senders(sim):
    """The phone sends a reply quoting our message, an image and a document; a sender made a
    LID sender has its chat keyed by LID; the page's events carry type, media and the quote."""
    cid, _token = sim.login()
    mid = "3EB0" + "B2" * 10
    sim.post("/sim/api/send", {"cid": cid, "to": PEER, "id": mid, "text": "appointment at 10"})
    reply = sim.post("/sim/control/incoming", {"from": PEER, "text": "11?", "quote": mid, "to": OWN, "lid": True})
    wid = f"{lid_for(PEER)}@lid"
    assert reply["messages"][0]["chat"] == wid
    image = sim.post("/sim/control/incoming", {"from": PEER, "type": "image", "text": "card", "to": OWN,
                                               "media": {"name": "card.jpg", "mimetype": "image/jpeg", "size": 4321}})
    doc = sim.post("/sim/control/incoming", {"from": PEER, "type": "document", "to": OWN})
    events = [e["msg"] for e in sim.poll(cid, since=0)["events"] if e.get("type") == "message"]
    by_id = {m["id"]: m for m in events}
    first = by_id[reply["messages"][0]["id"]]
    assert first["quoted"] == {"id": mid, "from_me": True, "type": "chat", "body": "appointment at 10"}
    assert first["data_id"] == f"false_{wid}_{first['id']}" and first["quoted_id"] == mid
    img = by_id[image["messages"][0]["id"]]
    assert (img["type"], img["caption"], img["text"]) == ("image", "card", None)
    assert {k: img["media"][k] for k in ("name", "mimetype", "size")} == {"name": "card.jpg", "mimetype": "image/jpeg",
                                                                          "size": 4321}
    pdf = by_id[doc["messages"][0]["id"]]
    assert pdf["type"] == "document" and pdf["media"]["mimetype"] == "application/pdf"
    body = sim.c.get(f"/sim/control/media/{img['id']}").data
    assert len(body) == 4321 and body.startswith(b"\x89PNG")
    log = {m["id"]: m for m in sim.get("/sim/control/messages?all=1")}
    assert log[first["id"]]["quoted_id"] == mid and log[first["id"]]["from_me"] is False
    for bad, code in (({"type": "sticker", "text": "x"}, "bad_type"), ({"text": "x", "quote": "3EB0NOPE0000"}, "bad_quote"),
                      ({"type": "image", "media": {"size": 0}}, "bad_media"), ({"type": "chat"}, "bad_text")):
        r = sim.post("/sim/control/incoming", {"from": PEER, "to": OWN, **bad}, status=400)
        assert r["error"] == code, (bad, r)
