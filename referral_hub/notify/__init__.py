"""Notifications: an outbox of rendered messages, delivery channels, templates and the worker.

Domain operations call `operations.notify_users(...)` inside their transaction (flush only);
`flask --app referral_hub worker` delivers what was committed, with retries.

Configuration (read with `current_app.config.get(KEY, default)`):

NOTIFY_STAFF_CHANNEL  "console" (default) or "email": the channel staff notifications use.
NOTIFY_MAX_ATTEMPTS   8: delivery attempts before a message is marked failed; retries wait
                      1, 2, 4, 8 ... minutes (at most an hour) between attempts.
NOTIFY_TIMEOUT        10: seconds an SMTP server or the SMS gateway may take to answer.
SMTP_HOST             "127.0.0.1"
SMTP_PORT             25
SMTP_USERNAME         None: log in when set (with SMTP_PASSWORD).
SMTP_PASSWORD         None
SMTP_STARTTLS         False: upgrade the connection with STARTTLS (certificate verified).
MAIL_FROM             "referral_hub@localhost": From address; its domain ends each Message-ID.
SMS_BASE_URL          "https://api.twilio.com": a Twilio-compatible REST API.
SMS_ACCOUNT_SID       None: account id, also the HTTP Basic user name.
SMS_AUTH_TOKEN        None: HTTP Basic password.
SMS_FROM              None: sender number (E.164) or messaging service id.
BASE_URL              (app setting) links in messages point at BASE_URL/referrals/<id>.

The console channel appends to `<instance_path>/notifications.log`.
"""
