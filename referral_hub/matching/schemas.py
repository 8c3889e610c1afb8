"""API schemas for matching and the screener."""

from __future__ import annotations

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from referral_hub.directory.models import CapacityStatus
from referral_hub.geo.base import Mode


class PointSchema(Schema):
    class Meta:
        unknown = RAISE

    lat = fields.Float(required=True, validate=validate.Range(min=-90, max=90))
    lon = fields.Float(required=True, validate=validate.Range(min=-180, max=180))


class MatchRequestSchema(Schema):
    """Answers (any subset of the screener), where the person is, and when."""

    class Meta:
        unknown = RAISE

    answers = fields.Dict(
        keys=fields.String(),
        load_default=dict,
        metadata={"description": "Screener answers by question code"},
    )
    location = fields.Nested(PointSchema, load_default=None, allow_none=True)
    place = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=200),
        metadata={"description": "Text to geocode when no coordinates"},
    )
    at = fields.AwareDateTime(
        load_default=None, allow_none=True, metadata={"description": "Time wanted (now by default)"}
    )
    mode = fields.Enum(Mode, by_value=True, load_default=Mode.DRIVE)
    limit = fields.Integer(load_default=25, validate=validate.Range(min=1, max=100))

    @validates_schema
    def _one_location(self, data, **kwargs):
        if data.get("location") and data.get("place"):
            raise ValidationError("Send coordinates or a place, not both.", "place")


class TravelSchema(Schema):
    minutes = fields.Float()
    minutes_low = fields.Float()
    minutes_high = fields.Float()
    distance_km = fields.Float()
    mode = fields.Enum(Mode, by_value=True)
    source = fields.String(metadata={"description": "estimate | routed"})
    note = fields.String(allow_none=True)


class SiteOptionSchema(Schema):
    site_id = fields.Integer()
    name = fields.String()
    address = fields.String()
    postal_code = fields.String()
    latitude = fields.Float()
    longitude = fields.Float()
    phone = fields.String(allow_none=True)
    open_at_time = fields.Boolean()
    opens_next = fields.AwareDateTime(allow_none=True)
    travel = fields.Nested(TravelSchema, allow_none=True)


class OutcomeSchema(Schema):
    status = fields.String(metadata={"description": "eligible | unknown | ineligible"})
    reasons = fields.List(fields.String())
    missing = fields.List(fields.String(), metadata={"description": "Questions still to ask"})


class MatchResultSchema(Schema):
    program_id = fields.Integer()
    program_uuid = fields.String()
    name = fields.String()
    organization = fields.String()
    categories = fields.List(fields.String())
    outcome = fields.Nested(OutcomeSchema)
    site = fields.Nested(SiteOptionSchema, allow_none=True)
    capacity_status = fields.Enum(CapacityStatus, by_value=True)
    open_slots = fields.Integer(allow_none=True)
    language_mode = fields.String(allow_none=True)
    sensitive = fields.Boolean()
    reason = fields.String(metadata={"description": "Why, in one line"})


class PlaceSchema(Schema):
    name = fields.String()
    postal_code = fields.String(allow_none=True)
    kind = fields.String()
    lat = fields.Float(attribute="point.lat")
    lon = fields.Float(attribute="point.lon")


class MatchesSchema(Schema):
    at = fields.AwareDateTime()
    location = fields.Nested(PlaceSchema, allow_none=True)
    location_note = fields.String(allow_none=True)
    counts = fields.Dict(keys=fields.String(), values=fields.Integer())
    ask_next = fields.List(fields.String())
    eligible = fields.List(fields.Nested(MatchResultSchema))
    unknown = fields.List(fields.Nested(MatchResultSchema))
    ineligible = fields.List(fields.Nested(MatchResultSchema))


class OptionSchema(Schema):
    value = fields.String()
    label = fields.Function(lambda o: str(o.label))


class QuestionSchema(Schema):
    code = fields.String()
    type = fields.Function(lambda q: q.type.value)
    label = fields.Function(lambda q: str(q.label))
    help = fields.Function(lambda q: str(q.help))
    options = fields.List(fields.Nested(OptionSchema))
    minimum = fields.Integer(allow_none=True)
    maximum = fields.Integer(allow_none=True)


class ScreenerSchema(Schema):
    version = fields.Integer()
    questions = fields.List(fields.Nested(QuestionSchema))
