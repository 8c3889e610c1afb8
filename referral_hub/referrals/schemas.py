"""API schemas for clients, consent and referrals."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from referral_hub.config import SUPPORTED_LANGUAGES
from referral_hub.referrals.lifecycle import BY_ACTION
from referral_hub.referrals.models import ConsentMethod, Priority, Status


class ClientCreateSchema(Schema):
    class Meta:
        unknown = RAISE

    display_name = fields.String(required=True, validate=validate.Length(min=1, max=120))
    phone = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=20))
    preferred_language = fields.String(
        load_default="en", validate=validate.OneOf(SUPPORTED_LANGUAGES)
    )
    birth_year = fields.Integer(load_default=None, allow_none=True)
    sms_ok = fields.Boolean(load_default=False)
    neutral_sender = fields.Boolean(load_default=False)
    quiet_hours_start = fields.Time(load_default=None, allow_none=True)
    quiet_hours_end = fields.Time(load_default=None, allow_none=True)


class ClientSchema(Schema):
    id = fields.Integer()
    display_name = fields.String()
    phone = fields.String(allow_none=True)
    preferred_language = fields.String()
    birth_year = fields.Integer(allow_none=True)
    sms_ok = fields.Boolean()
    neutral_sender = fields.Boolean()


class DuplicateQuerySchema(Schema):
    class Meta:
        unknown = RAISE

    display_name = fields.String(required=True, validate=validate.Length(min=1, max=120))
    birth_year = fields.Integer(load_default=None)
    phone = fields.String(load_default=None)


class DuplicatesSchema(Schema):
    items = fields.List(fields.Nested(ClientSchema))


class ConsentCreateSchema(Schema):
    class Meta:
        unknown = RAISE

    program_id = fields.Integer(required=True)
    method = fields.Enum(ConsentMethod, by_value=True, required=True)
    purpose = fields.String(load_default=None, validate=validate.Length(max=200))
    expires_at = fields.AwareDateTime(load_default=None, allow_none=True)
    override_reason = fields.String(load_default=None, validate=validate.Length(max=500))


class ConsentSchema(Schema):
    id = fields.Integer()
    client_id = fields.Integer()
    program_id = fields.Integer()
    method = fields.Enum(ConsentMethod, by_value=True)
    given_at = fields.AwareDateTime()
    expires_at = fields.AwareDateTime(allow_none=True)
    revoked_at = fields.AwareDateTime(allow_none=True)


class ReferralCreateSchema(Schema):
    class Meta:
        unknown = RAISE

    client_id = fields.Integer(required=True)
    program_id = fields.Integer(required=True)
    site_id = fields.Integer(load_default=None, allow_none=True)
    consent_id = fields.Integer(required=True)
    priority = fields.Enum(Priority, by_value=True, load_default=Priority.ROUTINE)
    note = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000))
    answers = fields.Dict(keys=fields.String(), load_default=dict)


class RerouteSchema(Schema):
    class Meta:
        unknown = RAISE

    program_id = fields.Integer(required=True)
    site_id = fields.Integer(load_default=None, allow_none=True)
    consent_id = fields.Integer(required=True)


class ActionSchema(Schema):
    """Fields an action may need; which ones are required is declared in lifecycle.py."""

    class Meta:
        unknown = RAISE

    version = fields.Integer(
        load_default=None, metadata={"description": "Expected version (optimistic lock)"}
    )
    reason_code = fields.String(load_default=None, validate=validate.Length(max=40))
    note = fields.String(load_default=None, validate=validate.Length(max=500))
    reason_note = fields.String(load_default=None, validate=validate.Length(max=500))
    appointment_at = fields.AwareDateTime(load_default=None)
    handed_off_to = fields.String(load_default=None, validate=validate.Length(max=120))
    code = fields.String(load_default=None, validate=validate.Length(max=8))
    at = fields.AwareDateTime(load_default=None)
    outcome = fields.String(load_default=None, validate=validate.Length(max=40))
    provider_notes = fields.String(load_default=None, validate=validate.Length(max=5000))


class ReferralQuerySchema(Schema):
    class Meta:
        unknown = RAISE

    page = fields.Integer(load_default=1, validate=validate.Range(min=1))
    per_page = fields.Integer(load_default=None, validate=validate.Range(min=1, max=200))
    status = fields.List(fields.Enum(Status, by_value=True), load_default=None)
    program_id = fields.Integer(load_default=None)
    since = fields.AwareDateTime(load_default=None)
    until = fields.AwareDateTime(load_default=None)
    side = fields.String(load_default=None, validate=validate.OneOf(["provider", "referrer"]))


class EventSchema(Schema):
    id = fields.Integer()
    action = fields.String()
    from_status = fields.Enum(Status, by_value=True, allow_none=True)
    to_status = fields.Enum(Status, by_value=True, allow_none=True)
    actor_user_id = fields.Integer(allow_none=True)
    actor_label = fields.String(allow_none=True)
    reason_code = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()


class ReferralSchema(Schema):
    """A referral as the caller may see it; withheld fields are null (see `withheld`)."""

    id = fields.Integer()
    uuid = fields.String()
    status = fields.Enum(Status, by_value=True)
    version = fields.Integer()
    priority = fields.Enum(Priority, by_value=True)
    program_id = fields.Integer()
    program_name = fields.String()
    site_id = fields.Integer(allow_none=True)
    client_id = fields.Integer()
    provider_org_id = fields.Integer()
    referring_org_id = fields.Integer()
    referring_user_id = fields.Integer(allow_none=True)
    rerouted_from_id = fields.Integer(allow_none=True)
    sent_at = fields.AwareDateTime(allow_none=True)
    response_due_at = fields.AwareDateTime(allow_none=True)
    accepted_at = fields.AwareDateTime(allow_none=True)
    appointment_at = fields.AwareDateTime(allow_none=True)
    arrived_at = fields.AwareDateTime(allow_none=True)
    handed_off_at = fields.AwareDateTime(allow_none=True)
    closed_at = fields.AwareDateTime(allow_none=True)
    escalated_at = fields.AwareDateTime(allow_none=True)
    note = fields.String(allow_none=True)
    reason_code = fields.String(allow_none=True)
    reason_note = fields.String(allow_none=True)
    outcome = fields.String(allow_none=True)
    provider_notes = fields.String(allow_none=True)
    handoff_code = fields.String(allow_none=True)
    actions = fields.List(fields.String(validate=validate.OneOf(list(BY_ACTION))))
    withheld = fields.List(fields.String())
