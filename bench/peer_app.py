"""A peer for api_bench.py, written the way a Flask-Dance + Flask-SQLAlchemy app reads a token:
verify the bearer JWT, read the stored token row, return JSON. Bench code only.

The model has the columns of Flask-Dance's `OAuthConsumerMixin` (id, provider, created_at, a
JSON `token`) plus the owner's id, and the read is the shape of its SQLAlchemy storage's `get`:
one query filtered on provider and owner, `.one()`, the token dict. Flask-SQLAlchemy's engine
defaults (no pre-ping), its session removed at the end of the request.

    PEER_DATABASE_URL=... PEER_JWT_SECRET=... gunicorn -c gunicorn.conf.py 'bench.peer_app:create_app()'
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

import jwt
from flask import Flask, jsonify, request
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import JSON, DateTime, Integer, String
from sqlalchemy.exc import NoResultFound
from sqlalchemy.orm import Mapped, mapped_column

db = SQLAlchemy()
PROVIDER = "facebook"


class OAuth(db.Model):
    __tablename__ = "flask_dance_oauth"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(50))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=lambda: datetime.now(UTC))
    token: Mapped[dict] = mapped_column(JSON)
    tenant_id: Mapped[int] = mapped_column(Integer, index=True)


def create_app(database_url: str | None = None, jwt_secret: str | None = None) -> Flask:
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = database_url or os.environ["PEER_DATABASE_URL"]
    secret = jwt_secret or os.environ["PEER_JWT_SECRET"]
    db.init_app(app)

    def error(status: int, message: str):
        return jsonify({"success": False, "detail": message}), status

    @app.get("/crm/marketing/token-status")
    def token_status():
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return error(401, "bearer token required")
        try:
            claims = jwt.decode(token, secret, algorithms=["HS256"],
                                options={"require": ["exp", "tenant_id", "role"]})
        except jwt.InvalidTokenError:
            return error(401, "invalid token")
        try:
            row = db.session.execute(db.select(OAuth).filter_by(
                provider=PROVIDER, tenant_id=claims["tenant_id"])).scalar_one()
        except NoResultFound:
            return jsonify({"success": True, "data": {"connected": False}})
        stored = row.token
        return jsonify({"success": True, "data": {
            "connected": True, "token_type": stored.get("token_type"),
            "expires_at": stored.get("expires_at"), "scopes": stored.get("scope", "").split(","),
        }})

    return app


def seed(database_url: str, tenant_id: int, expires_at: int, scopes: list[str]) -> None:
    """The peer's table and one stored token for the tenant (a stand-in token string)."""
    app = create_app(database_url, "unused")
    with app.app_context():
        db.create_all()
        db.session.add(OAuth(provider=PROVIDER, tenant_id=tenant_id, token={
            "access_token": "EAA" + "x" * 180, "token_type": "bearer",
            "expires_in": max(0, expires_at - int(datetime.now(UTC).timestamp())),
            "expires_at": expires_at, "scope": ",".join(scopes)}))
        db.session.commit()
