"""referral_hub: from a crisis contact in the field to a confirmed arrival at the right program."""

from __future__ import annotations

import os
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from referral_hub import (
    cli,
    models,  # noqa: F401  (registers every table on the metadata)
)
from referral_hub import config as settings
from referral_hub.accounts import api as accounts_api
from referral_hub.accounts import auth
from referral_hub.accounts import views as accounts_views
from referral_hub.core import meta_api
from referral_hub.core.security import configure_password_hashing
from referral_hub.directory import (
    hsds_api,
    manage_views,  # noqa: F401  (its routes join directory.bp)
)
from referral_hub.directory import views as directory_views
from referral_hub.extensions import babel, csrf, db, limiter, login_manager, migrate
from referral_hub.insights import views as insights_views
from referral_hub.insights import (
    views_coverage,  # noqa: F401  (its routes join insights.bp)
    views_dashboards,  # noqa: F401  (its routes join insights.bp)
    views_goals,  # noqa: F401  (its routes join insights.bp)
    views_public,  # noqa: F401  (its routes join insights.bp)
)
from referral_hub.matching import api as matching_api
from referral_hub.matching import views as matching_views
from referral_hub.notify import inbound as sms_inbound
from referral_hub.portal import views as portal_views
from referral_hub.referrals import api as referrals_api
from referral_hub.referrals import views as referrals_views
from referral_hub.transport import api as transport_api
from referral_hub.transport import views as transport_views
from referral_hub.transport import (
    views_booking,  # noqa: F401  (its routes join transport.bp)
    views_dispatch,  # noqa: F401  (its routes join transport.bp)
    views_driver,  # noqa: F401  (its routes join transport.bp)
)
from referral_hub.web import security
from referral_hub.web import views as web_views
from referral_hub.web.i18n import formatting_locale

MIGRATIONS_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "migrations")
TRANSLATIONS_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "translations")


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the application: settings, extensions, blueprints, error pages, headers, CLI."""
    app = Flask(
        __name__,
        instance_path=os.environ.get("INSTANCE_PATH") or None,
        instance_relative_config=True,
        static_folder="web/static",
        template_folder="web/templates",
    )
    app.config.from_mapping(settings.load(app.instance_path))
    if config:
        app.config.update(config)
    os.makedirs(app.instance_path, exist_ok=True)

    register_extensions(app)
    register_auth(app)
    register_blueprints(app)
    register_web(app)
    register_cli(app)
    return app


def register_extensions(app: Flask) -> None:
    configure_password_hashing(app.config["ARGON2_PROFILE"])
    if app.config["TRUSTED_PROXIES"]:
        n = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]
    db.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS_DIR, render_as_batch=True, compare_type=True)
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", TRANSLATIONS_DIR)
    babel.init_app(app, locale_selector=formatting_locale)
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)


def register_auth(app: Flask) -> None:
    auth.register(app)


def register_blueprints(app: Flask) -> None:
    for blueprint in (
        web_views.bp,
        accounts_views.bp,
        accounts_views.admin_bp,
        meta_api.bp,
        accounts_api.bp,
        hsds_api.bp,
        directory_views.bp,
        matching_api.bp,
        matching_views.bp,
        referrals_api.bp,
        referrals_views.bp,
        transport_api.bp,
        transport_views.bp,
        portal_views.bp,
        sms_inbound.bp,
        insights_views.bp,
    ):
        app.register_blueprint(blueprint)


def register_web(app: Flask) -> None:
    web_views.register(app)
    security.register(app)


def register_cli(app: Flask) -> None:
    cli.register(app)
