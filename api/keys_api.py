"""/webjs/keys: key management, for admin keys only (any other key gets 404, as for a
route that does not exist)."""
from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from sqlalchemy import select

from api.keys import create_key, revoke_key
from api.schemas import USER_ID_MAX, Line, RequestSchema, Timestamp, UserId
from api.sessions import current_scope, services
from models import ApiKey

blp = Blueprint("keys", __name__, url_prefix="/webjs/keys", description="API keys (admin keys only)")

NOT_FOUND = "Not found"
_ID = validate.Length(min=1, max=USER_ID_MAX)


class KeyCreateSchema(RequestSchema):
    """The body of POST /webjs/keys: a name, and admin or a scope (user-id prefixes, user ids)."""

    name = Line(required=True, validate=validate.Length(min=1, max=200))  # api_keys.name
    admin = fields.Boolean(load_default=False, metadata={"description": "Every session, and key management."})
    scope_prefixes = fields.List(UserId(validate=_ID), load_default=list, validate=validate.Length(max=100),
                                 metadata={"description": "User-id prefixes this key may use."})
    user_ids = fields.List(UserId(validate=_ID), load_default=list, validate=validate.Length(max=1000),
                           metadata={"description": "User ids this key may use."})

    @validates_schema
    def _scope(self, data, **_):
        if data["admin"] and (data["scope_prefixes"] or data["user_ids"]):
            raise ValidationError("an admin key has no scope", "admin")
        if not data["admin"] and not (data["scope_prefixes"] or data["user_ids"]):
            raise ValidationError("a scoped key needs scope_prefixes or user_ids", "scope_prefixes")


class KeySchema(Schema):
    """An API key as the API shows it (never the key itself)."""

    id = fields.String()
    name = fields.String()
    prefix = fields.String(metadata={"description": "The key's first characters, to tell keys apart."})
    admin = fields.Boolean()
    scope_prefixes = fields.List(fields.String())
    user_ids = fields.List(fields.String())
    created_at = Timestamp()
    revoked_at = Timestamp(allow_none=True)


class KeyCreatedSchema(KeySchema):
    """A new key, the only answer that holds the key itself."""

    key = fields.String(metadata={"description": "The key itself: shown once, never stored."})


class KeyListSchema(Schema):
    """The body of GET /webjs/keys."""

    keys = fields.List(fields.Nested(KeySchema))


def key_view(row: ApiKey) -> dict:
    """An ApiKey row in KeySchema's shape."""
    scope = row.scope or {}
    return {"id": row.id, "name": row.name, "prefix": row.prefix, "admin": row.admin,
            "scope_prefixes": scope.get("prefixes") or [], "user_ids": scope.get("user_ids") or [],
            "created_at": row.created_at, "revoked_at": row.revoked_at}


def admin_only() -> None:
    """404 (as if the route did not exist) unless the caller's key is an admin key."""
    if not current_scope().admin:
        abort(404, message=NOT_FOUND)


@blp.route("")
class Keys(MethodView):
    """GET and POST /webjs/keys."""

    @blp.response(200, KeyListSchema)
    def get(self):
        """Every key, active and revoked (never the keys themselves)."""
        admin_only()
        with services().db() as s:
            rows = s.execute(select(ApiKey).order_by(ApiKey.created_at)).scalars().all()
        return {"keys": [key_view(r) for r in rows]}

    @blp.arguments(KeyCreateSchema())
    @blp.response(201, KeyCreatedSchema)
    def post(self, body):
        """Make a key: admin, or scoped to user-id prefixes and user ids. The answer holds the
        key itself, once."""
        admin_only()
        row, key = create_key(services().db, body["name"], admin=body["admin"], prefixes=body["scope_prefixes"],
                              user_ids=body["user_ids"])
        return {**key_view(row), "key": key}


@blp.route("/<key_id>")
class KeyItem(MethodView):
    """DELETE /webjs/keys/{key_id}."""

    @blp.response(200, KeySchema)
    def delete(self, key_id):
        """Revoke a key: refused from the next request on, in every API worker."""
        admin_only()
        svc = services()
        revoke_key(svc.db, key_id, svc.redis, by_prefix=False)
        with svc.db() as s:
            row = s.execute(select(ApiKey).where(ApiKey.id == key_id)).scalar_one_or_none()
        if row is None:
            abort(404, message=NOT_FOUND)
        return key_view(row)
