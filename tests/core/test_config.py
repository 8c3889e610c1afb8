"""Settings from the environment, with safe defaults."""

from referral_hub import config


def test_defaults_need_no_network(tmp_path, monkeypatch):
    for name in (
        "DATABASE_URL",
        "REDIS_URL",
        "SECRET_KEY",
        "BASE_URL",
        "GEO_BACKEND",
        "NOTIFY_STAFF_CHANNEL",
    ):
        monkeypatch.delenv(name, raising=False)
    settings = config.load(str(tmp_path))
    assert settings["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///")
    assert settings["RATELIMIT_STORAGE_URI"] == "memory://"
    assert settings["GEO_BACKEND"] == "offline"
    assert settings["NOTIFY_STAFF_CHANNEL"] == "console"
    assert settings["SESSION_COOKIE_SECURE"] is False  # http://127.0.0.1 in the demo


def test_secret_key_is_generated_once_and_kept(tmp_path, monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    first = config.load(str(tmp_path))["SECRET_KEY"]
    assert len(first) >= 48 and (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
    assert config.load(str(tmp_path))["SECRET_KEY"] == first
    assert config.load(str(tmp_path / "other"))["SECRET_KEY"] != first


def test_production_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("BASE_URL", "https://referrals.example.gov/")
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://u@h/db")
    settings = config.load(str(tmp_path))
    assert settings["RATELIMIT_STORAGE_URI"] == "redis://127.0.0.1:6379/0"
    assert settings["SESSION_COOKIE_SECURE"] is True
    assert settings["SESSION_COOKIE_NAME"].startswith("__Host-")
    assert settings["HSTS"] is True
    assert settings["BASE_URL"] == "https://referrals.example.gov"
    assert settings["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@h/db"
