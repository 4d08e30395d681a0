"""The web side's Flask extensions, created unbound and initialised by the application factory
(the database handle, which the domain uses too, is in crm_meta.infra.database)."""

from flask_babel import Babel
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_wtf.csrf import CSRFProtect

migrate = Migrate()
csrf = CSRFProtect()
login_manager = LoginManager()
babel = Babel()
