"""Message templates: subject and body of each staff notification, rendered in one language.

Templates read only the whitelisted parameters in ALLOWED_PARAMS, so client data (names,
phones, notes) handed over by mistake can never reach a message body. Each paragraph is one
complete translatable sentence; paragraphs are joined, never sentence fragments.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app
from flask_babel import format_datetime, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from referral_hub.referrals.lifecycle import REASON_TITLES
from referral_hub.web.i18n import language

log = logging.getLogger(__name__)

ALLOWED_PARAMS = frozenset({"program_name", "referral_id", "due_at", "priority", "reason", "hours"})

PRIORITY_TITLES = {
    "urgent": _l("Urgent"),
    "routine": _l("Routine"),
}


class UnknownTemplate(ValueError):
    """No template has this name."""


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str


@dataclass(frozen=True)
class Params:
    """The whitelisted parameters, typed; text is produced only inside the language block."""

    program: str
    referral_id: int
    due_at: datetime | None = None
    priority: str | None = None
    reason: str | None = None  # a code of REASON_TITLES
    hours: int | None = None

    @classmethod
    def from_mapping(cls, template: str, params: Mapping[str, Any]) -> Params:
        """Keep the whitelisted keys; refuse a message that misses what every one needs."""
        ignored = set(params) - ALLOWED_PARAMS
        if ignored:
            # Key names only: the values are exactly what must not be copied anywhere.
            log.warning("template %s: ignored unknown params %s", template, sorted(ignored))
        if not params.get("program_name") or params.get("referral_id") is None:
            raise ValueError(f"template {template} needs program_name and referral_id")
        due_at = params.get("due_at")
        if due_at is not None and (not isinstance(due_at, datetime) or due_at.tzinfo is None):
            raise ValueError("due_at must be an aware datetime")
        hours = params.get("hours")
        priority = params.get("priority")
        return cls(
            program=str(params["program_name"]),
            referral_id=int(params["referral_id"]),
            due_at=due_at,
            priority=str(priority) if priority else None,
            reason=reason_code(params.get("reason")),
            hours=int(hours) if hours is not None else None,
        )

    @property
    def link(self) -> str:
        base = current_app.config.get("BASE_URL", "http://127.0.0.1:5000").rstrip("/")
        return f"{base}/referrals/{self.referral_id}"

    def reason_title(self) -> str | None:
        return str(REASON_TITLES[self.reason]) if self.reason else None

    def priority_title(self) -> str | None:
        if self.priority is None:
            return None
        title = PRIORITY_TITLES.get(self.priority)
        return str(title) if title is not None else None


def reason_code(value: Any) -> str | None:
    """The reason code for a code or for a code's title in any language we serve; else None.

    Callers may hand over a title they rendered in their own language: it is mapped back to
    its code so each recipient reads it in theirs. Anything else (free text, which could hold
    client details) is dropped.
    """
    if not value:
        return None
    text = str(value)
    if text in REASON_TITLES:
        return text
    for code in current_app.config.get("LANGUAGES", ("en",)):
        with language(code):
            for reason, title in REASON_TITLES.items():
                if str(title) == text:
                    return reason
    log.warning("a reason that is neither a reason code nor a reason title was dropped")
    return None


Builder = Callable[[Params], tuple[str, list[str]]]


def _open_line(p: Params) -> str:
    return _("Open the referral: %(link)s", link=p.link)


def _reason_line(p: Params) -> list[str]:
    title = p.reason_title()
    return [_("Reason: %(reason)s", reason=title)] if title else []


def referral_new(p: Params) -> tuple[str, list[str]]:
    """To the provider organization's staff: a referral waits for an answer."""
    subject = _("New referral #%(id)s for %(program)s", id=p.referral_id, program=p.program)
    body = [_("A new referral for %(program)s is waiting for your answer.", program=p.program)]
    if p.priority_title():
        body.append(_("Priority: %(priority)s", priority=p.priority_title()))
    if p.due_at is not None:
        body.append(_("Please respond by %(time)s.", time=format_datetime(p.due_at, "short")))
    body.append(_open_line(p))
    return subject, body


def referral_accepted(p: Params) -> tuple[str, list[str]]:
    """To the referring user: the program accepted."""
    subject = _("Referral #%(id)s accepted by %(program)s", id=p.referral_id, program=p.program)
    body = [
        _("%(program)s accepted referral #%(id)s.", program=p.program, id=p.referral_id),
        _open_line(p),
    ]
    return subject, body


def referral_declined(p: Params) -> tuple[str, list[str]]:
    """To the referring user: the program declined, with the reason's title."""
    subject = _("Referral #%(id)s declined by %(program)s", id=p.referral_id, program=p.program)
    body = [
        _("%(program)s declined referral #%(id)s.", program=p.program, id=p.referral_id),
        *_reason_line(p),
        _open_line(p),
    ]
    return subject, body


def referral_handed_off(p: Params) -> tuple[str, list[str]]:
    """To the referring user: the warm handoff happened."""
    subject = _(
        "Referral #%(id)s: client received at %(program)s", id=p.referral_id, program=p.program
    )
    body = [
        _(
            "%(program)s confirmed that the client of referral #%(id)s was received in person.",
            program=p.program,
            id=p.referral_id,
        ),
        _open_line(p),
    ]
    return subject, body


def referral_escalated(p: Params) -> tuple[str, list[str]]:
    """To coordinators and the referring user: the program has not answered in time."""
    subject = _(
        "Escalation: referral #%(id)s to %(program)s is overdue",
        id=p.referral_id,
        program=p.program,
    )
    if p.hours is not None:
        first = ngettext(
            "%(program)s did not answer referral #%(id)s within %(num)d hour.",
            "%(program)s did not answer referral #%(id)s within %(num)d hours.",
            p.hours,
            program=p.program,
            id=p.referral_id,
        )
    else:
        first = _(
            "%(program)s did not answer referral #%(id)s in time.",
            program=p.program,
            id=p.referral_id,
        )
    body = [
        first,
        _("Please follow up with the program or refer the client elsewhere."),
        _open_line(p),
    ]
    return subject, body


def referral_no_show(p: Params) -> tuple[str, list[str]]:
    """To the referring user: the client did not arrive."""
    subject = _(
        "Referral #%(id)s: client did not arrive at %(program)s",
        id=p.referral_id,
        program=p.program,
    )
    body = [
        _(
            "The client of referral #%(id)s did not arrive at %(program)s.",
            id=p.referral_id,
            program=p.program,
        ),
        _open_line(p),
    ]
    return subject, body


def referral_cancelled(p: Params) -> tuple[str, list[str]]:
    """To the referring user: the referral was cancelled (or expired unanswered)."""
    subject = _("Referral #%(id)s to %(program)s cancelled", id=p.referral_id, program=p.program)
    body = [
        _("Referral #%(id)s to %(program)s was cancelled.", id=p.referral_id, program=p.program),
        *_reason_line(p),
        _open_line(p),
    ]
    return subject, body


def ride_no_show(p: Params) -> tuple[str, list[str]]:
    """To the referring user: the driver did not find the client at the pickup."""
    subject = _("Referral #%(id)s: client was not at the pickup", id=p.referral_id)
    body = [
        _(
            "The driver did not find the client of referral #%(id)s at the pickup for %(program)s.",
            id=p.referral_id,
            program=p.program,
        ),
        _("Please follow up with the client and book another ride if they still want to go."),
        _open_line(p),
    ]
    return subject, body


def referral_client_confirmed(p: Params) -> tuple[str, list[str]]:
    """To the provider's staff and the referring user: the client will come."""
    subject = _("Referral #%(id)s: the client confirmed the appointment", id=p.referral_id)
    body = [
        _(
            "The client of referral #%(id)s confirmed the appointment at %(program)s.",
            id=p.referral_id,
            program=p.program,
        ),
        _open_line(p),
    ]
    return subject, body


def referral_client_reschedule(p: Params) -> tuple[str, list[str]]:
    """To the provider's staff and the referring user: the client asks for another time."""
    subject = _("Referral #%(id)s: the client asked for another time", id=p.referral_id)
    body = [
        _(
            "The client of referral #%(id)s asked for another appointment at %(program)s.",
            id=p.referral_id,
            program=p.program,
        ),
        _("The list of referrals shows the times that suit them. Please set a new appointment."),
        _open_line(p),
    ]
    return subject, body


def referral_client_locked(p: Params) -> tuple[str, list[str]]:
    """To the referring user: too many wrong answers to the client page's check."""
    subject = _("Referral #%(id)s: the client's link was locked", id=p.referral_id)
    body = [
        _(
            "The client link of referral #%(id)s to %(program)s was locked after too many "
            "wrong answers.",
            id=p.referral_id,
            program=p.program,
        ),
        _("If the client still needs their page, give them a new link."),
        _open_line(p),
    ]
    return subject, body


TEMPLATES: dict[str, Builder] = {
    "referral_new": referral_new,
    "referral_accepted": referral_accepted,
    "referral_declined": referral_declined,
    "referral_handed_off": referral_handed_off,
    "referral_escalated": referral_escalated,
    "referral_no_show": referral_no_show,
    "referral_cancelled": referral_cancelled,
    "ride_no_show": ride_no_show,
    "referral_client_confirmed": referral_client_confirmed,
    "referral_client_reschedule": referral_client_reschedule,
    "referral_client_locked": referral_client_locked,
}


def render(template: str, language_code: str, params: Mapping[str, Any]) -> Rendered:
    """Render a template's subject and body in a language (needs an app context)."""
    try:
        builder = TEMPLATES[template]
    except KeyError:
        raise UnknownTemplate(template) from None
    values = Params.from_mapping(template, params)
    with language(language_code):
        subject, paragraphs = builder(values)
        return Rendered(subject=str(subject), body="\n\n".join(str(p) for p in paragraphs))
