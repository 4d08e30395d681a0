"""Flask extensions, created unbound and initialised by the application factory."""

from flask_babel import Babel
from flask_limiter import Limiter
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


def _rate_limit_key() -> str:
    # Imported late: the auth package needs the models, which need `db` from here.
    from crm_meta.auth.principal import rate_limit_key

    return rate_limit_key()


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
limiter = Limiter(key_func=_rate_limit_key)
csrf = CSRFProtect()
login_manager = LoginManager()
babel = Babel()
