"""/webjs/users/{userId}: the one session of a user."""
from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint, abort
from sqlalchemy import select

from api.schemas import DeletedSchema, SessionStatusSchema
from api.sessions import current_scope, destroy_session, services
from models import WhatsAppSession

blp = Blueprint("users", __name__, url_prefix="/webjs/users", description="Sessions by user")


@blp.route("/<user_id>/session")
class UserSession(MethodView):
    """GET /webjs/users/{user_id}/session."""

    @blp.response(200, SessionStatusSchema)
    def get(self, user_id):
        """The user's session."""
        with services().db() as s:
            row = s.execute(select(WhatsAppSession).where(WhatsAppSession.user_id == user_id, current_scope().sessions())
                            .order_by(WhatsAppSession.created_at.desc())).scalars().first()
        if row is None:
            abort(404, message="No session found for this user")
        return row


@blp.route("/<user_id>/sessions")
class UserSessions(MethodView):
    """DELETE /webjs/users/{user_id}/sessions."""

    @blp.response(200, DeletedSchema)
    def delete(self, user_id):
        """Delete every session of the user."""
        with services().db.begin() as s:
            rows = s.execute(select(WhatsAppSession).where(WhatsAppSession.user_id == user_id, current_scope().sessions())
                             .with_for_update()).scalars().all()
            for row in rows:
                destroy_session(s, row)
        return {"success": True, "message": f"Deleted {len(rows)} session(s)", "deleted_count": len(rows)}
