"""/webjs/users/{userId}: the one session of a user."""
from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint, abort
from sqlalchemy import select

from api.schemas import DeletedSchema, SessionStatusSchema
from api.sessions import current_scope, destroy_session, services
from models import WhatsAppSession

blp = Blueprint("users", __name__, url_prefix="/webjs/users", description="Sessions by user")


def users_sessions(user_id: str):
    """The query of ``user_id``'s sessions that the caller's key may see."""
    return select(WhatsAppSession).where(WhatsAppSession.user_id == user_id, current_scope().sessions())


@blp.route("/<user_id>/session")
class UserSession(MethodView):
    """GET /webjs/users/{user_id}/session."""

    @blp.response(200, SessionStatusSchema)
    def get(self, user_id):
        """The user's session."""
        newest_first = users_sessions(user_id).order_by(WhatsAppSession.created_at.desc())
        with services().db() as s:
            row = s.execute(newest_first).scalars().first()
        return row or abort(404, message="No session found for this user")


@blp.route("/<user_id>/sessions")
class UserSessions(MethodView):
    """DELETE /webjs/users/{user_id}/sessions."""

    @blp.response(200, DeletedSchema)
    def delete(self, user_id):
        """Delete every session of the user."""
        with services().db.begin() as s:
            rows = s.execute(users_sessions(user_id).with_for_update()).scalars().all()
            for row in rows:
                destroy_session(s, row)
        return {"success": True, "message": f"Deleted {len(rows)} session(s)", "deleted_count": len(rows)}
