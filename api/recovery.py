"""POST /webjs/recovery/auth: bring back every linked session that lost its browser,
from its saved login (S3_RESTORED) or, when there is none or it was revoked, with a new
QR (QR_REGENERATED). The seed's response shape."""
from __future__ import annotations

import time

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from api.sessions import current_scope, services
from api.waits import Waiter
from messaging.events import session_channel
from messaging.recovery import recover, recoverable
from models import SessionStatus, WhatsAppSession

blp = Blueprint("recovery", __name__, url_prefix="/webjs/recovery", description="Recovery")

# Not brought back by recovery: the user logged out, or the session was stopped on purpose.
NOT_RECOVERED = ("LOGOUT", "DELETED", "IDLE")


class RecoveryResultSchema(Schema):
    """One session's outcome in the recovery answer (the seed's camelCase names)."""

    sessionId = fields.String()  # noqa: N815 - the seed's names
    recoveryMethod = fields.String(metadata={"description": "S3_RESTORED or QR_REGENERATED"})  # noqa: N815
    success = fields.Boolean()
    requiresQRScan = fields.Boolean()  # noqa: N815
    error = fields.String(allow_none=True)


class RecoverySchema(Schema):
    """The body of POST /webjs/recovery/auth (the seed's camelCase names)."""

    success = fields.Boolean()
    totalSessions = fields.Integer()  # noqa: N815
    s3Restored = fields.Integer()  # noqa: N815
    qrRegenerated = fields.Integer()  # noqa: N815
    failed = fields.Integer()
    duration = fields.String()
    results = fields.List(fields.Nested(RecoveryResultSchema))


@blp.route("/auth")
class RecoverAuth(MethodView):
    """POST /webjs/recovery/auth."""

    @blp.response(200, RecoverySchema)
    def post(self):
        """Restart every linked session whose browser is gone; waits (up to QR_WAIT_SECONDS)
        to tell which came back from their saved login and which need a new QR scan."""
        svc = services()
        started = time.monotonic()
        query = recoverable(reasons=None).where(WhatsAppSession.status_reason.not_in(NOT_RECOVERED),
                                                current_scope().sessions())
        with svc.db() as s:
            candidates = s.execute(query.with_only_columns(WhatsAppSession.session_id)).scalars().all()
        channels = [session_channel(sid) for sid in candidates]
        results: dict[str, dict] = {}
        waiter = Waiter(svc.redis, *channels) if channels else None
        try:
            placed, failed = recover(svc.db, svc.redis, svc.celery, query, reason="RECOVERY")
            for session_id, why in failed:
                results[session_id] = {"sessionId": session_id, "recoveryMethod": "FAILED", "success": False,
                                       "requiresQRScan": False, "error": why}
            epochs = {p.session_id: p.epoch for p in placed}

            def outcome(event: dict) -> bool:
                sid = event.get("session_id")
                if sid not in epochs or sid in results or event.get("epoch") != epochs[sid]:
                    return False
                status = event.get("status")
                if status == SessionStatus.READY:
                    results[sid] = {"sessionId": sid, "recoveryMethod": "S3_RESTORED", "success": True,
                                    "requiresQRScan": False}
                elif status == SessionStatus.QR_READY:
                    results[sid] = {"sessionId": sid, "recoveryMethod": "QR_REGENERATED", "success": True,
                                    "requiresQRScan": True}
                elif status == SessionStatus.DISCONNECTED:
                    results[sid] = {"sessionId": sid, "recoveryMethod": "FAILED", "success": False,
                                    "requiresQRScan": False, "error": event.get("reason")}
                return all(s in results for s in epochs)

            if waiter is not None and epochs:
                waiter.until(outcome, svc.settings.qr_wait_seconds)
            for sid in epochs:
                results.setdefault(sid, {"sessionId": sid, "recoveryMethod": "PENDING", "success": False,
                                         "requiresQRScan": False, "error": "no answer from the browser in time"})
        finally:
            if waiter is not None:
                waiter.close()
        rows = list(results.values())
        return {
            "success": not any(r["recoveryMethod"] == "FAILED" for r in rows),
            "totalSessions": len(rows),
            "s3Restored": sum(r["recoveryMethod"] == "S3_RESTORED" for r in rows),
            "qrRegenerated": sum(r["recoveryMethod"] == "QR_REGENERATED" for r in rows),
            "failed": sum(not r["success"] for r in rows),
            "duration": f"{time.monotonic() - started:.1f} seconds",
            "results": rows,
        }
