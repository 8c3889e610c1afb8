"""WSGI entry point: `gunicorn wsgi:app`."""

from referral_hub import create_app

app = create_app()
