"""Flask app of the WhatsApp Web simulator.

Routes:
  /, /send                 the page (templates/index.html + static/app.js), or in the 2026 profile
                           the plain "WhatsApp works with Google Chrome N+" page for refused user agents
  /sim/api/...             JSON API used by the page (connection, polling, sending)
  /sim/phone/...           actions of the simulated phone (scan, pair, logout)
  /sim/control/...         test control and read-only views
  /sim/health              liveness
See docs/simulator.md for the full reference.
"""
from __future__ import annotations

import base64
import binascii
import mimetypes
import os
import time
from typing import Any

from flask import Flask, Response, jsonify, render_template, request, send_from_directory
from markupsafe import escape

from .addressing import unsupported_html
from .config import SimConfig
from .state import SimError, SimState

HERE = os.path.dirname(os.path.abspath(__file__))


def _body() -> dict[str, Any]:
    data = request.get_json(force=True, silent=True)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SimError(400, "bad_body", "body must be a JSON object")
    return data


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value or "").strip().lower() in ("1", "true", "yes", "on")


def _form_text(value: str | None) -> str | None:
    """A text field of a multipart form as the page typed it: browsers send its line breaks
    as CRLF (the HTML form encoding), the app's own upload does not."""
    return value.replace("\r\n", "\n") if value is not None else None


def create_app(config: SimConfig | None = None) -> Flask:
    config = config if config is not None else SimConfig.from_env()
    config.validate()
    app = Flask(
        __name__,
        static_folder=os.path.join(HERE, "static"),
        static_url_path="/static",
        template_folder=os.path.join(HERE, "templates"),
    )
    app.config["MAX_CONTENT_LENGTH"] = None
    app.json.sort_keys = False
    state = SimState(config)
    app.extensions["simulator"] = state

    @app.errorhandler(SimError)
    def _sim_error(exc: SimError):
        return jsonify({"error": exc.code, "message": exc.message}), exc.status

    @app.before_request
    def _latency():
        if request.path.startswith("/sim/api/"):
            delay = state.config.latency_ms / 1000.0
            if delay > 0:
                time.sleep(delay)

    # ------------------------------------------------------------------ page
    def _page():
        user_agent = request.headers.get("User-Agent", "")
        page_config = state.page_config(user_agent, request.headers.get("Accept-Language"))
        if page_config["unsupported"]:
            state.count_unsupported_page(request.full_path.rstrip("?"), user_agent)
            html = unsupported_html(page_config["unsupported"]["min_chrome"], page_config["locale"])
        else:
            html = render_template("index.html", poll_ms=page_config["poll_ms"], page_config=page_config)
        resp = Response(html, mimetype="text/html")
        resp.headers["Cache-Control"] = "no-store"
        return resp

    app.add_url_rule("/", "index", _page)
    app.add_url_rule("/send", "send", _page)

    @app.get("/favicon.ico")
    def _favicon():
        return send_from_directory(app.static_folder, "favicon.svg", mimetype="image/svg+xml")

    @app.get("/sim/outside")
    def _outside():
        """Where the real page's links out of WhatsApp Web (www.whatsapp.com, the FAQ, a browser
        download) lead: a local page naming the address, so that nothing leaves the machine."""
        target = request.args.get("to", "")
        body = ("<!DOCTYPE html><title>Outside WhatsApp Web</title>"
                f"<p>The real page would open <code>{escape(target)}</code> here.</p>")
        return Response(body, mimetype="text/html")

    @app.get("/sim/health")
    def _health():
        return jsonify({"ok": True, "service": "whatsapp-web-simulator"})

    # ------------------------------------------------------------- page API
    @app.post("/sim/api/connect")
    def _connect():
        b = _body()
        token = b.get("token")
        return jsonify(state.connect(token if isinstance(token, str) else None, str(b.get("path") or ""),
                                     request.headers.get("User-Agent", ""), load_cause=b.get("load_cause"),
                                     language=b.get("language"),
                                     accept_language=request.headers.get("Accept-Language")))

    @app.post("/sim/api/poll")
    def _poll():
        b = _body()
        return jsonify(state.poll(b.get("cid"), b.get("since"), b.get("qr_serial"), b.get("chats_v"),
                                  b.get("watch")))

    @app.post("/sim/api/disconnect")
    def _disconnect():
        state.disconnect(_body().get("cid"))
        return jsonify({"ok": True})

    @app.post("/sim/api/chat/seen")
    def _chat_seen():
        b = _body()
        return jsonify(state.chat_seen(b.get("cid"), b.get("phone") or b.get("wid"), via=b.get("via")))

    @app.post("/sim/api/exists")
    def _exists():
        b = _body()
        return jsonify(state.exists(b.get("cid"), b.get("phone") or b.get("wid")))

    @app.post("/sim/api/cookies/accept")
    def _cookies():
        b = _body()
        return jsonify(state.cookie_choice(b.get("cid"), b.get("accepted", True)))

    @app.post("/sim/api/send")
    def _send():
        b = _body()
        if _truthy(b.get("sticker")):  # a sticker made by a model route: {sticker, data (base64), name, mimetype}
            try:
                data = base64.b64decode(str(b.get("data") or ""), validate=True)
            except (binascii.Error, ValueError):
                raise SimError(400, "bad_data", "data must be base64") from None
            if not data:
                raise SimError(400, "no_file", "a sticker needs data (base64)")
            name = os.path.basename(str(b.get("name") or "sticker.webp"))
            mimetype = str(b.get("mimetype") or mimetypes.guess_type(name)[0] or "image/webp")
            return jsonify(state.send_media(b.get("cid"), b.get("to"), b.get("id"), "media", None, name,
                                            mimetype, data, sticker=True))
        return jsonify(state.send_text(b.get("cid"), b.get("to"), b.get("id"), b.get("text")))

    @app.post("/sim/api/send-media")
    def _send_media():
        f = request.files.get("file")
        if f is None:
            raise SimError(400, "no_file", "multipart field 'file' is missing")
        kind = request.form.get("kind", "document")
        if kind not in ("document", "media", "sticker"):
            raise SimError(400, "bad_kind", "kind must be 'document', 'media' or 'sticker'")
        sticker = kind == "sticker" or _truthy(request.form.get("sticker"))
        if kind == "sticker":
            kind = "media"
        name = os.path.basename(f.filename or "file")
        mimetype = f.mimetype or ""
        if not mimetype or mimetype == "application/octet-stream":
            mimetype = mimetypes.guess_type(name)[0] or "application/octet-stream"
        data = f.read()
        return jsonify(state.send_media(request.form.get("cid"), request.form.get("to"),
                                        request.form.get("id"), kind, _form_text(request.form.get("caption")),
                                        name, mimetype, data, sticker=sticker))

    def _media_response(msg_id: str):
        found = state.media(msg_id)
        if found is None:
            raise SimError(404, "no_media", "no media with that message id")
        data, mimetype, name = found
        resp = Response(data, mimetype=mimetype)
        resp.headers["Content-Disposition"] = f'inline; filename="{name}"'
        return resp

    app.add_url_rule("/sim/api/media/<msg_id>", "page_media", _media_response)
    app.add_url_rule("/sim/control/media/<msg_id>", "control_media", _media_response)

    # ------------------------------------------- page API and phone side, as a table
    # Endpoints that call one method of the state with fields of their JSON body, in order.
    def body_fields_to(method, names):
        def view():
            body = _body()
            return jsonify(method(*(body.get(name) for name in names)))
        return view

    for path, method, names in (
        ("/sim/api/qr/reload", state.reload_qr, ("cid",)),
        ("/sim/api/mode", state.set_mode, ("cid", "mode")),
        ("/sim/api/pair/request", state.request_pair_code, ("cid", "phone")),
        ("/sim/api/logout", state.web_logout, ("cid", "from")),
        ("/sim/api/takeover", state.takeover, ("cid",)),
        ("/sim/api/chat/open", state.open_chat, ("cid", "phone", "wid", "in_app")),
        ("/sim/api/onboarding/ack", state.onboarding_ack, ("cid",)),
        ("/sim/api/screen/action", state.screen_action, ("cid", "action")),
        ("/sim/phone/scan", state.phone_scan, ("payload", "phone")),
        ("/sim/phone/pair", state.phone_pair, ("code", "phone")),
        ("/sim/phone/logout", state.phone_logout, ("phone", "token")),
        ("/sim/control/logout", state.phone_logout, ("phone", "token")),
    ):
        app.add_url_rule(path, path, body_fields_to(method, names), methods=["POST"])

    # -------------------------------------------------------------- control
    @app.get("/sim/control/config")
    def _get_config():
        return jsonify(state.get_config())

    @app.post("/sim/control/config")
    def _set_config():
        return jsonify(state.set_config(_body()))

    @app.post("/sim/control/reset")
    def _reset():
        b = _body()
        state.reset(keep_config=bool(b.get("keep_config")))
        return jsonify({"ok": True, "config": state.get_config()})

    @app.get("/sim/control/state")
    def _state():
        return jsonify(state.snapshot_state())

    @app.get("/sim/control/messages")
    def _messages():
        include_all = request.args.get("all", "") in ("1", "true", "yes")
        return jsonify(state.message_log(to=request.args.get("to"), include_all=include_all))

    @app.get("/sim/control/chats")
    def _chats():
        return jsonify(state.chat_view(request.args.get("phone")))

    # Control endpoints that hand their JSON body (or nothing) to one method of the state.
    with_body = {"incoming": state.incoming, "conflict": state.conflict, "connection": state.set_connection,
                 "ack": state.force_ack, "screen": state.set_screen, "reload": state.control_reload}
    for name, method in with_body.items():
        app.add_url_rule(f"/sim/control/{name}", f"control_{name}", methods=["POST"],
                         view_func=lambda method=method: jsonify(method(_body())))
    app.add_url_rule("/sim/control/counters", "control_counters", view_func=lambda: jsonify(state.counters()))
    app.add_url_rule("/sim/control/counters/reset", "control_counters_reset", methods=["POST"],
                     view_func=lambda: jsonify(state.reset_counters()))

    return app
