"""The OpenAPI 3 document, generated from the API views' schemas."""

from __future__ import annotations

import re

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask

from referral_hub.core.api import API_PREFIX, ErrorSchema

_CONVERTER = re.compile(r"<(?:(?P<conv>[a-z]+)(?:\([^)]*\))?:)?(?P<name>\w+)>")
_TYPES = {"int": "integer", "float": "number", "uuid": "string"}
_ERROR_TEXT = {
    400: "Malformed request",
    401: "Authentication required",
    403: "Not allowed",
    404: "Not found, or not visible to the caller",
    409: "Conflict with the record's current state",
    422: "Invalid input",
    429: "Too many requests",
}


def _path_and_params(rule: str) -> tuple[str, list[dict]]:
    params = []
    for match in _CONVERTER.finditer(rule):
        params.append(
            {
                "in": "path",
                "name": match["name"],
                "required": True,
                "schema": {"type": _TYPES.get(match["conv"] or "", "string")},
            }
        )
    return _CONVERTER.sub(lambda m: "{" + m["name"] + "}", rule), params


def build_spec(app: Flask) -> dict:
    """Walk the URL map and describe every view marked with core.api.endpoint."""
    spec = APISpec(
        title="referral_hub API",
        version="1",
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={"description": "Referrals, directory and transport for community safety."},
        servers=[{"url": app.config["BASE_URL"]}],
    )
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.schema("Error", schema=ErrorSchema)
    error_ref = {"$ref": "#/components/schemas/Error"}

    paths: dict[str, dict] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        view = app.view_functions.get(rule.endpoint)
        meta = getattr(view, "_api", None)
        if meta is None or not rule.rule.startswith(API_PREFIX):
            continue
        path, params = _path_and_params(rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            operation: dict = {
                "summary": meta["summary"],
                "tags": [meta["tag"]],
                "operationId": f"{rule.endpoint}.{method.lower()}",
                "parameters": list(params),
                "responses": {},
            }
            if meta["query"] is not None:
                operation["parameters"].append({"in": "query", "schema": meta["query"]})
            if meta["body"] is not None:
                operation["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": meta["body"]}},
                }
            ok: dict = {"description": "Success"}
            if meta["response"] is not None:
                ok["content"] = {"application/json": {"schema": meta["response"]}}
            operation["responses"][str(meta["status"])] = ok
            codes = set(meta["errors"])
            if not meta["public"]:
                codes.add(401)
                operation["security"] = [{"bearer": []}]
            if meta["body"] is not None or meta["query"] is not None:
                codes.update({400, 422})
            for code in sorted(codes):
                operation["responses"][str(code)] = {
                    "description": _ERROR_TEXT.get(code, "Error"),
                    "content": {"application/json": {"schema": error_ref}},
                }
            paths.setdefault(path, {})[method.lower()] = operation
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()
