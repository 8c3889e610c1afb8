"""API schemas for organizations, users and memberships."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from referral_hub.accounts.models import OrgKind, Role
from referral_hub.config import SUPPORTED_LANGUAGES


class OrganizationSchema(Schema):
    id = fields.Integer(dump_only=True)
    slug = fields.String(dump_only=True)
    name = fields.String(dump_only=True)
    kind = fields.Enum(OrgKind, by_value=True, dump_only=True)
    phone = fields.String(dump_only=True, allow_none=True)
    website = fields.String(dump_only=True, allow_none=True)
    description = fields.String(dump_only=True, allow_none=True)
    is_active = fields.Boolean(dump_only=True)


class OrganizationRefSchema(Schema):
    id = fields.Integer(dump_only=True)
    slug = fields.String(dump_only=True)
    name = fields.String(dump_only=True)
    kind = fields.Enum(OrgKind, by_value=True, dump_only=True)


class MembershipSchema(Schema):
    role = fields.Enum(Role, by_value=True, dump_only=True)
    organization = fields.Nested(OrganizationRefSchema, dump_only=True)


class UserSchema(Schema):
    id = fields.Integer(dump_only=True)
    email = fields.Email(dump_only=True)
    name = fields.String(dump_only=True)
    locale = fields.String(dump_only=True, allow_none=True)
    is_active = fields.Boolean(dump_only=True)
    memberships = fields.List(fields.Nested(MembershipSchema), dump_only=True)


class MeSchema(UserSchema):
    roles = fields.Method(
        "get_roles", dump_only=True, metadata={"type": "array", "items": {"type": "string"}}
    )

    def get_roles(self, user) -> list[str]:
        return sorted(role.value for role in user.roles)


class UserCreateSchema(Schema):
    """Create a user with one membership (administrators, or provider admins for their org)."""

    class Meta:
        unknown = RAISE

    email = fields.Email(required=True, load_only=True)
    name = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=200))
    organization_id = fields.Integer(required=True, load_only=True)
    role = fields.Enum(Role, by_value=True, required=True, load_only=True)
    password = fields.String(
        load_only=True, load_default=None, validate=validate.Length(min=12, max=200)
    )
    locale = fields.String(
        load_only=True, load_default=None, validate=validate.OneOf(SUPPORTED_LANGUAGES)
    )


class UserUpdateSchema(Schema):
    class Meta:
        unknown = RAISE

    email = fields.Email(load_only=True)
    name = fields.String(load_only=True, validate=validate.Length(min=1, max=200))
    locale = fields.String(
        load_only=True, allow_none=True, validate=validate.OneOf(SUPPORTED_LANGUAGES)
    )
    is_active = fields.Boolean(load_only=True)


class UserQuerySchema(Schema):
    class Meta:
        unknown = RAISE

    page = fields.Integer(load_default=1, validate=validate.Range(min=1))
    per_page = fields.Integer(load_default=None, validate=validate.Range(min=1, max=200))
    organization_id = fields.Integer()
    q = fields.String(validate=validate.Length(max=100))
