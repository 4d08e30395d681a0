"""Users: people of one tenant who log in to the browser pages."""

from datetime import datetime

from flask import current_app
from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from crm_meta.infra.database import db
from crm_meta.models.tenant import Tenant
from crm_meta.models.types import UTCDateTime, utcnow

ROLES = ("admin", "member")


class LoginUser:
    """What Flask-Login asks of a user (its UserMixin's members, kept here so that the model,
    which the domain reads, needs no web extension)."""

    __hash__ = object.__hash__

    @property
    def is_active(self) -> bool:
        return True

    @property
    def is_authenticated(self) -> bool:
        return self.is_active

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return str(self.id)

    def __eq__(self, other):
        if isinstance(other, LoginUser):
            return self.get_id() == other.get_id()
        return NotImplemented


class User(LoginUser, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(254), unique=True, index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20), default="member")
    locale: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    tenant: Mapped[Tenant] = relationship()

    def set_password(self, password: str) -> None:
        # scrypt, a current memory-hard algorithm; tests use cheaper scrypt parameters.
        method = current_app.config["PASSWORD_HASH_METHOD"]
        self.password_hash = generate_password_hash(password, method=method)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"
