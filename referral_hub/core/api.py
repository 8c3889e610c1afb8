"""JSON API helpers: the one error shape, input loading, pagination, endpoint metadata."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from flask import current_app, jsonify, request
from marshmallow import RAISE, Schema, ValidationError, fields, validate
from sqlalchemy import Select, func, select

from referral_hub.core.errors import ValidationFailed
from referral_hub.extensions import db

API_PREFIX = "/api/v1"


def error_body(code: str, message: str, fields: dict | None = None, **extra: Any) -> dict:
    """Build the one JSON error shape: {"error": {"code", "message", "fields"}}."""
    error = {"code": code, "message": message, "fields": fields or {}}
    error.update(extra)
    return {"error": error}


def error_response(http_status: int, code: str, message: str, fields: dict | None = None, **extra):
    """Return a Flask response carrying the error shape and status."""
    response = jsonify(error_body(code, message, fields, **extra))
    response.status_code = http_status
    return response


def is_api_request() -> bool:
    """Tell whether the current request is for the JSON API."""
    return request.path == API_PREFIX or request.path.startswith(API_PREFIX + "/")


# Built from a dict: a declared attribute called `fields` would shadow Schema.fields.
ErrorDetail = Schema.from_dict(
    {
        "code": fields.String(required=True, metadata={"example": "validation_failed"}),
        "message": fields.String(required=True),
        "fields": fields.Dict(
            keys=fields.String(),
            values=fields.List(fields.String()),
            metadata={"description": "Messages per input field"},
        ),
    },
    name="ErrorDetail",
)


class ErrorSchema(Schema):
    """The one error shape of the API."""

    error = fields.Nested(ErrorDetail, required=True)


class PageQuery(Schema):
    """Pagination parameters shared by every list endpoint."""

    class Meta:
        unknown = RAISE

    page = fields.Integer(load_default=1, validate=validate.Range(min=1))
    per_page = fields.Integer(load_default=None, validate=validate.Range(min=1, max=200))


def _flatten(messages: Any) -> dict[str, list[str]]:
    """Turn marshmallow's nested messages into {"field.sub": ["message", ...]}."""
    out: dict[str, list[str]] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, sub in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), sub)
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            out.setdefault(prefix or "_schema", []).extend(value)
        else:
            out.setdefault(prefix or "_schema", []).append(str(value))

    walk("", messages)
    return out


def load_json(schema: Schema) -> dict:
    """Parse the request body with a schema; malformed JSON or invalid fields raise."""
    data = request.get_json(silent=True)
    if data is None:
        raise ValidationFailed("The request body must be a JSON object.", code="invalid_json")
    return load_data(schema, data)


def load_query(schema: Schema) -> dict:
    """Parse query-string parameters with a schema."""
    # A List field takes every value (?status=sent&status=accepted); others take one.
    data = {
        key: values
        if isinstance(schema.fields.get(key), fields.List) or len(values) > 1
        else values[0]
        for key, values in request.args.lists()
    }
    return load_data(schema, data)


def load_data(schema: Schema, data: Any) -> dict:
    """Validate data with a schema, raising ValidationFailed with per-field messages."""
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise ValidationFailed(
            "Some fields are missing or invalid.", fields=_flatten(exc.messages)
        ) from exc


def paginate(stmt: Select, schema: Schema, params: dict) -> dict:
    """Run a scoped select one page at a time; two queries whatever the page size."""
    per_page = params.get("per_page") or current_app.config["API_PAGE_SIZE"]
    page = params.get("page", 1)
    total = db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    rows = db.session.scalars(stmt.limit(per_page).offset((page - 1) * per_page)).all()
    return {
        "items": schema.dump(rows, many=True),
        "page": page,
        "per_page": per_page,
        "total": total,
        "pages": math.ceil(total / per_page) if total else 0,
    }


_page_schemas: dict[type[Schema], type[Schema]] = {}


def page_schema(item: type[Schema]) -> type[Schema]:
    """Return (once) the schema of a page of `item` for the OpenAPI document."""
    if item not in _page_schemas:
        name = item.__name__.removesuffix("Schema") + "PageSchema"
        _page_schemas[item] = Schema.from_dict(
            {
                "items": fields.List(fields.Nested(item), required=True),
                "page": fields.Integer(required=True),
                "per_page": fields.Integer(required=True),
                "total": fields.Integer(required=True),
                "pages": fields.Integer(required=True),
            },
            name=name,
        )
    return _page_schemas[item]


def endpoint(
    *,
    summary: str,
    tag: str,
    body: type[Schema] | None = None,
    query: type[Schema] | None = None,
    response: type[Schema] | None = None,
    paginated: bool = False,
    status: int = 200,
    public: bool = False,
    errors: tuple[int, ...] = (),
) -> Callable:
    """Describe an API view for the generated OpenAPI document (behaviour is unchanged)."""

    def decorate(view: Callable) -> Callable:
        view._api = {  # type: ignore[attr-defined]
            "summary": summary,
            "tag": tag,
            "body": body,
            "query": query,
            "response": page_schema(response) if paginated and response else response,
            "status": status,
            "public": public,
            "errors": errors,
        }
        return view

    return decorate
