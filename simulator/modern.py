"""What only the 2026 page profile does, as a mixin of :class:`simulator.state.SimState`:
whole screens and ``Socket.state``, the onboarding dialog and its revocation, self reloads; plus the
counters kept for both profiles (page loads, chat opens, Log out clicks).

All methods run under ``SimState.lock`` (the public ones take it) and use SimState's fields.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .model import LOGGED_IN_STATES, Connection, SimError, iso, normalize_phone

if TYPE_CHECKING:  # pragma: no cover
    from .state import SimState  # noqa: F401

# screens a test can force with POST /sim/control/screen
CONTROL_SCREENS = ("TEMP_BAN", "TOS_BLOCK", "DEPRECATED_VERSION", "APP_LOCKED", "OFFLINE", "CONNECTING")
# account-level screens: they win over a conflict
ACCOUNT_SCREENS = ("TEMP_BAN", "TOS_BLOCK", "DEPRECATED_VERSION", "APP_LOCKED")
# screens that only a logged-in page can show (DEPRECATED_VERSION shows on the login page too)
NEEDS_LOGIN = ("TEMP_BAN", "TOS_BLOCK", "APP_LOCKED", "OFFLINE", "CONNECTING")
# screens behind which the server refuses new messages (409 screen_blocked); offline ones queue them
BLOCKING = ("TEMP_BAN", "TOS_BLOCK", "DEPRECATED_VERSION", "APP_LOCKED", "UNSUPPORTED_BROWSER", "CONFLICT",
            "ANOTHER_SESSION")
SOCKET_BY_SCREEN = {
    "UNSUPPORTED_BROWSER": "UNLAUNCHED",
    "TOS_BLOCK": "TOS_BLOCK",
    "DEPRECATED_VERSION": "DEPRECATED_VERSION",
    "CONFLICT": "CONFLICT",
    "ANOTHER_SESSION": "CONFLICT",
    "OFFLINE": "TIMEOUT",
    "CONNECTING": "OPENING",
    "TEMP_BAN": "CONNECTED",  # the socket is up, the UI is blocked [unverified]
    "APP_LOCKED": "CONNECTED",  # [unverified]
}
LOAD_CAUSES = ("navigation", "reload", "self_reload", "back_forward")
LOGOUT_SOURCES = ("menu", "conflict", "temp_ban", "connecting", "model")
SCREEN_ACTIONS = ("use_here", "close", "log_in", "refresh", "retry", "unlock", "learn_more")
RELOAD_CAUSES = ("update", "scheduled")


class ModernMixin:
    # ------------------------------------------------------------------ state
    def _clear_modern(self: "SimState") -> None:
        # forced screens: one rule per selector {"screen", "info", "at"}
        self.screen_rules: dict[str, Any] = {"all": None, "phones": {}, "tokens": {}, "cids": {}}
        self.reload_seq = 0
        self._clear_counters()

    def _clear_counters(self: "SimState") -> None:
        self.loads: list[dict[str, Any]] = []
        self.load_of: dict[str, dict[str, Any]] = {}
        self.chat_open_log: list[dict[str, Any]] = []
        self.logout_click_log: list[dict[str, Any]] = []
        self.cookie_log: list[dict[str, Any]] = []
        self.screen_action_log: list[dict[str, Any]] = []
        self.reload_log: list[dict[str, Any]] = []
        self.unsupported_pages: list[dict[str, Any]] = []
        self.exists_queries = 0
        self.chat_read_log: list[dict[str, Any]] = []

    # ---------------------------------------------------------------- screens
    def _forced(self: "SimState", conn: Connection) -> tuple[str, str | None, dict[str, Any]] | None:
        """The forced-screen rule that applies to ``conn``: cid, then token, then phone, then all."""
        logged_in = bool(conn.token) and not conn.logged_out
        rules = self.screen_rules
        for kind, key in (("cids", conn.cid), ("tokens", conn.token), ("phones", conn.phone), ("all", None)):
            if kind == "all":
                rule = rules["all"]
            elif key is None:
                continue
            else:
                rule = rules[kind].get(key)
            if rule is None:
                continue
            if rule["screen"] in NEEDS_LOGIN and not logged_in:
                continue
            return kind, key, rule
        return None

    def _screen(self: "SimState", conn: Connection, now: float) -> tuple[str | None, dict[str, Any] | None]:
        """The whole screen a 2026 page shows instead of its normal UI (None: normal)."""
        if conn.profile != "2026":
            return None, None
        if conn.unsupported:
            return "UNSUPPORTED_BROWSER", {"min_chrome": conn.unsupported_min_chrome}
        if conn.logged_out:
            return None, None
        forced = self._forced(conn)
        if forced and forced[2]["screen"] in ACCOUNT_SCREENS:
            return forced[2]["screen"], dict(forced[2]["info"]) or None
        if conn.state == "CONFLICT":
            return ("CONFLICT" if conn.conflict_kind == "computer" else "ANOTHER_SESSION"), None
        if forced:
            return forced[2]["screen"], dict(forced[2]["info"]) or None
        if conn.token and conn.state in ("PAIRING", "CONNECTED", "TIMEOUT"):
            kind = self._offline_kind(conn.token, conn.phone)
            if kind:
                # before the first MAIN (booting / syncing): the "Connecting to WhatsApp" popup
                return ("OFFLINE" if conn.main_at is not None else "CONNECTING"), {"kind": kind}
        return None, None

    def _socket_state(self: "SimState", conn: Connection, screen: str | None) -> str:
        """The value of ``Socket.state`` for this page."""
        if conn.unsupported:
            return "UNLAUNCHED"
        if conn.logged_out:
            return "UNPAIRED"
        if screen in SOCKET_BY_SCREEN:
            return SOCKET_BY_SCREEN[screen]
        return conn.state

    def _note_screen(self: "SimState", conn: Connection, now: float) -> None:
        """A new screen or dialog is a new revision of the page's state."""
        screen, _ = self._screen(conn, now)
        show = self._onboarding_shows(conn, screen)
        if screen != conn.screen_seen or show != conn.onboarding_seen:
            conn.screen_seen, conn.onboarding_seen = screen, show
            conn.rev += 1

    def _check_not_blocked(self: "SimState", conn: Connection) -> None:
        if conn.profile != "2026":
            return
        screen, _ = self._screen(conn, self.now())
        if screen in BLOCKING:
            raise SimError(409, "screen_blocked", f"the page shows {screen}; nothing can be sent")

    def _screens_view(self: "SimState") -> dict[str, Any]:
        def pub(rule: dict[str, Any] | None) -> dict[str, Any] | None:
            if rule is None:
                return None
            return {"screen": rule["screen"], "info": dict(rule["info"]), "at": iso(rule["at"])}
        rules = self.screen_rules
        return {"all": pub(rules["all"]),
                **{k: {key: pub(r) for key, r in rules[k].items()} for k in ("phones", "tokens", "cids")}}

    def set_screen(self: "SimState", body: dict[str, Any]) -> dict[str, Any]:
        """POST /sim/control/screen: force (or with ``screen: null`` clear) a whole screen."""
        with self.lock:
            now = self.now()
            self._tick(now)
            screen = body.get("screen")
            if screen is not None:
                screen = str(screen).strip().upper()
                if screen not in CONTROL_SCREENS:
                    raise SimError(400, "bad_screen", f"screen must be one of {', '.join(CONTROL_SCREENS)} or null")
            info: dict[str, Any] = {}
            if screen == "TEMP_BAN":
                code = body.get("code", 101)
                if isinstance(code, bool) or not str(code).strip().isdigit():
                    raise SimError(400, "bad_code", "code must be a number (101, 102, 104)")
                duration = body.get("duration", "1 hour")
                if not isinstance(duration, str) or not duration.strip():
                    raise SimError(400, "bad_duration", "duration must be a text like '1 hour'")
                info = {"code": int(code), "duration": duration.strip()}
            cid, token, phone_raw = body.get("cid"), body.get("token"), body.get("phone")
            rule = {"screen": screen, "info": info, "at": now} if screen else None
            rules = self.screen_rules
            if cid or token or phone_raw:
                if cid:
                    kind, key = "cids", str(cid)
                elif token:
                    kind, key = "tokens", str(token)
                else:
                    key = normalize_phone(phone_raw)
                    if key is None:
                        raise SimError(400, "bad_phone", "phone must be a phone number")
                    kind = "phones"
                if rule is None:
                    rules[kind].pop(key, None)
                else:
                    rules[kind][key] = rule
            elif rule is None:  # no selector and null: clear every forced screen
                rules["all"] = None
                for kind in ("phones", "tokens", "cids"):
                    rules[kind].clear()
            else:
                rules["all"] = rule
            self._tick(now)
            shown = [c.cid for c in self.connections.values()
                     if c.closed_at is None and c.alive(now) and c.profile == "2026"
                     and screen is not None and self._screen(c, now)[0] == screen]
            return {"ok": True, "cids": shown, "screens": self._screens_view()}

    def screen_action(self: "SimState", cid: Any, action: Any) -> dict[str, Any]:
        """A button of a whole screen (other than Log out, which is /sim/api/logout)."""
        with self.lock:
            conn = self._conn(cid)
            now = self.now()
            self._tick(now)
            if action not in SCREEN_ACTIONS:
                raise SimError(400, "bad_action", f"action must be one of {', '.join(SCREEN_ACTIONS)}")
            screen, _ = self._screen(conn, now)
            self.screen_action_log.append({"cid": conn.cid, "token": conn.token, "phone": conn.phone,
                                           "screen": screen, "action": action, "at": iso(now), "ts": now})
            if action == "use_here" and conn.state == "CONFLICT" and conn.token and not conn.logged_out:
                # CONFLICT (another computer): take over here. ANOTHER_SESSION: the page reloads and
                # its new load becomes the newest window of the login.
                if screen != "ANOTHER_SESSION":
                    self._takeover(conn, now)
            elif (action, screen) in (("log_in", "TOS_BLOCK"), ("unlock", "APP_LOCKED")):
                forced = self._forced(conn)
                if forced is not None:
                    kind, key, _ = forced
                    if kind == "all":
                        self.screen_rules["all"] = None
                    else:
                        self.screen_rules[kind].pop(key, None)
            self._tick(now)
            return self._snapshot(conn, now, since=self.seq, qr_serial=-1, chats_v=None, watch=[])

    # ------------------------------------------------------ onboarding, reloads
    def _onboarding_shows(self: "SimState", conn: Connection, screen: str | None) -> bool:
        if conn.profile != "2026" or screen is not None or conn.logged_out or conn.state != "CONNECTED":
            return False
        dev = self.devices.get(conn.token) if conn.token else None
        return (dev is not None and self.config.onboarding and dev.onboarding == "pending"
                and dev.onboarding_shown_at is not None)

    def _logout_reason(self: "SimState", conn: Connection) -> str | None:
        if not conn.logged_out or not conn.token:
            return None
        dev = self.devices.get(conn.token)
        return dev.revoke_reason if dev is not None else None

    def _tick_devices(self: "SimState", now: float) -> None:
        cfg = self.config
        by_token: dict[str, list[Connection]] | None = None
        for dev in list(self.devices.values()):
            if dev.revoked_at is not None or dev.profile != "2026":
                continue
            if not (dev.main_at is None or (dev.onboarding == "pending" and cfg.onboarding)
                    or (dev.reload_done_at is None and cfg.first_reload_after_link >= 0)):
                continue  # nothing left to happen to this device
            if by_token is None:  # the open pages of each login, once per tick
                by_token = {}
                for c in self.connections.values():
                    if c.token and c.closed_at is None and not c.logged_out:
                        by_token.setdefault(c.token, []).append(c)
            pages = by_token.get(dev.token, [])
            if dev.main_at is None:
                mains = [c.main_at for c in pages if c.main_at is not None]
                if mains:
                    dev.main_at = min(mains)
            # "What's new" after a fresh link; unacknowledged it ends in a phone-side unlink
            if dev.onboarding == "pending" and cfg.onboarding and dev.main_at is not None:
                if dev.onboarding_shown_at is None:
                    due = dev.main_at + cfg.onboarding_delay
                    showing = [c for c in pages if c.alive(now) and c.profile == "2026" and c.state == "CONNECTED"
                               and c.main_at is not None and self._screen(c, now)[0] is None]
                    if now >= due and showing:
                        dev.onboarding_shown_at = max(due, min(c.main_at for c in showing))
                if dev.onboarding_shown_at is not None and now >= dev.onboarding_shown_at + cfg.onboarding_timeout:
                    dev.onboarding = "revoked"
                    self._revoke([dev.token], now, "onboarding")
                    continue
            # one scheduled reload of the pages open at that time
            if dev.reload_done_at is None and cfg.first_reload_after_link >= 0:
                due = dev.created + cfg.first_reload_after_link
                if now >= due:
                    dev.reload_done_at = now
                    for conn in pages:
                        if (conn.alive(now) and conn.profile == "2026" and conn.created <= due
                                and not conn.conflict and conn.state in LOGGED_IN_STATES):
                            self._ask_reload(conn, "scheduled", now)

    def _ask_reload(self: "SimState", conn: Connection, cause: str, now: float) -> None:
        self.reload_seq += 1
        conn.reload = {"cause": cause, "id": self.reload_seq}
        conn.rev += 1
        self.reload_log.append({"cid": conn.cid, "token": conn.token, "cause": cause, "id": self.reload_seq,
                                "at": iso(now), "ts": now})

    def control_reload(self: "SimState", body: dict[str, Any]) -> dict[str, Any]:
        """POST /sim/control/reload: the selected 2026 pages reload themselves (an update)."""
        with self.lock:
            now = self.now()
            self._tick(now)
            cause = body.get("cause", "update")
            if cause not in RELOAD_CAUSES:
                raise SimError(400, "bad_cause", "cause must be 'update' or 'scheduled'")
            conns = [c for c in self._select_conns(body, now, logged_in=False)
                     if c.closed_at is None and c.profile == "2026"]
            for conn in conns:
                self._ask_reload(conn, cause, now)
            return {"ok": True, "cids": [c.cid for c in conns]}

    def onboarding_ack(self: "SimState", cid: Any) -> dict[str, Any]:
        """Continue pressed on "What's new on WhatsApp Web"."""
        with self.lock:
            conn = self._conn(cid)
            now = self.now()
            self._tick(now)
            dev = self.devices.get(conn.token) if conn.token else None
            if dev is None or conn.logged_out:
                raise SimError(409, "not_logged_in", "connection is not logged in")
            if dev.onboarding == "pending":
                dev.onboarding = "acknowledged"
                dev.onboarding_acked_at = now
                self._save()
            self._tick(now)
            return {"ok": True, "onboarding": dev.onboarding}

    def cookie_choice(self: "SimState", cid: Any, accepted: Any) -> dict[str, Any]:
        """The cookie dialog was answered (only recorded)."""
        with self.lock:
            now = self.now()
            conn = self.connections.get(str(cid)) if cid else None
            if conn is not None and conn.closed_at is None:
                conn.last_seen = now
            self.cookie_log.append({"cid": str(cid) if cid else None, "accepted": accepted is not False,
                                    "at": iso(now), "ts": now})
            return {"ok": True}

    # --------------------------------------------------------------- counters
    def _count_load(self: "SimState", conn: Connection, now: float) -> None:
        rec = {"cid": conn.cid, "token": None, "phone": None, "cause": conn.load_cause, "path": conn.path,
               "profile": conn.profile, "at": iso(now), "ts": now}
        self.loads.append(rec)
        self.load_of[conn.cid] = rec

    def _load_to_device(self: "SimState", conn: Connection) -> None:
        rec = self.load_of.get(conn.cid)
        if rec is not None:
            rec["token"], rec["phone"] = conn.token, conn.phone

    def _count_chat_open(self: "SimState", conn: Connection, phone: str | None, raw: Any, in_app: Any, ok: bool,
                         now: float) -> None:
        self.chat_open_log.append({"cid": conn.cid, "token": conn.token, "phone": conn.phone, "peer": phone,
                                   "requested": None if raw is None else str(raw)[:64],
                                   "in_app": in_app if isinstance(in_app, bool) else None, "ok": ok,
                                   "at": iso(now), "ts": now})

    def _count_chat_read(self: "SimState", conn: Connection, peer: str | None, unread: int, via: str,
                         now: float) -> None:
        self.chat_read_log.append({"phone": conn.phone, "peer": peer, "unread": unread, "via": via,
                                   "profile": conn.profile, "at": iso(now), "ts": now})

    def _count_logout_click(self: "SimState", conn: Connection | None, cid: Any, source: Any, now: float) -> None:
        self.logout_click_log.append({
            "cid": str(cid) if cid else None,
            "token": conn.token if conn is not None else None,
            "phone": conn.phone if conn is not None else None,
            "from": str(source)[:32] if source is not None else None,
            "profile": conn.profile if conn is not None else None,
            "at": iso(now), "ts": now})

    def count_unsupported_page(self: "SimState", path: str, user_agent: str) -> None:
        with self.lock:
            now = self.now()
            self.unsupported_pages.append({"path": path[:500], "user_agent": user_agent[:300],
                                           "at": iso(now), "ts": now})

    def counters(self: "SimState") -> dict[str, Any]:
        """GET /sim/control/counters."""
        with self.lock:
            self._tick(self.now())

            def load_view(rec: dict[str, Any]) -> dict[str, Any]:
                return {"cause": rec["cause"], "path": rec["path"], "at": rec["at"], "ts": rec["ts"],
                        "cid": rec["cid"], "profile": rec["profile"]}

            def opens(token: str | None, in_app: bool) -> int:
                return sum(1 for o in self.chat_open_log if o["token"] == token and o["in_app"] is in_app)

            devices = []
            for dev in self.devices.values():
                loads = [load_view(r) for r in self.loads if r["token"] == dev.token]
                devices.append({"token": dev.token, "phone": dev.phone, "wid": dev.wid,
                                "page_loads": len(loads), "chat_opens": opens(dev.token, True),
                                "deep_link_opens": opens(dev.token, False), "loads": loads})
            unlinked = [load_view(r) for r in self.loads if r["token"] is None]
            by_cause: dict[str, int] = {}
            for rec in self.loads:
                by_cause[rec["cause"]] = by_cause.get(rec["cause"], 0) + 1
            return {
                "page_loads": len(self.loads),
                "loads_by_cause": by_cause,
                "chat_opens": sum(1 for o in self.chat_open_log if o["in_app"] is True),
                "deep_link_opens": sum(1 for o in self.chat_open_log if o["in_app"] is False),
                "devices": devices,
                "unlinked": {"page_loads": len(unlinked), "loads": unlinked},
                "logout_clicks": [dict(c) for c in self.logout_click_log],
                "cookies": [dict(c) for c in self.cookie_log],
                "screen_actions": [dict(a) for a in self.screen_action_log],
                "reloads": [dict(r) for r in self.reload_log],
                "exists_queries": self.exists_queries,
                "unsupported_pages": len(self.unsupported_pages),
                "chat_open_log": [dict(o) for o in self.chat_open_log],
                "chat_reads": [dict(r) for r in self.chat_read_log],
            }

    def reset_counters(self: "SimState") -> dict[str, Any]:
        with self.lock:
            self._clear_counters()
            return {"ok": True}
