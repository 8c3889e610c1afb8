"""Flask extensions, created unbound and initialised in create_app."""

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect

from referral_hub.core.db import Base
from referral_hub.web.i18n import LanguageBabel

db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
babel = LanguageBabel()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address)
