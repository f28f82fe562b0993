"""The OpenAPI 3.1 document, built from the registered operations and their pydantic models."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from web.api.base import PATH_PARAM, ErrorBody, Operation
from web.api.schemas import LOCAL_TIME_PATTERN

ERROR_STATUSES = {
    "400": "malformed request",
    "401": "missing or invalid bearer token",
    "403": "not allowed for this role",
    "404": "no such object in your account",
    "409": "conflicts with the current state (e.g. an overlapping booking)",
    "422": "invalid input; error.field names the field",
}
EXTRA_STATUSES = {429: "too many attempts; retry later"}
REF = "#/components/schemas/{model}"


def _param_schema(name: str) -> dict[str, Any]:
    if name.endswith("_id") and name != "recurrence_id":
        return {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}
    if name == "recurrence_id":
        return {"type": "string", "pattern": LOCAL_TIME_PATTERN}
    if name == "month":  # a statement of account's month
        return {"type": "string", "pattern": r"^[0-9]{4}-(0[1-9]|1[0-2])$"}
    return {"type": "string"}


def build(
    operations: Iterable[Operation], *, title: str = "Yunhui API", version: str = "1"
) -> dict[str, Any]:
    operations = list(operations)
    keys: list[tuple[type[BaseModel], JsonSchemaMode]] = [(ErrorBody, "serialization")]
    for op in operations:
        if op.body is not None:
            keys.append((op.body, "validation"))
        if op.response is not None:
            keys.append((op.response, "serialization"))
        if op.query is not None:
            keys.append((op.query, "validation"))
    keys = list(dict.fromkeys(keys))
    refs, definitions = models_json_schema(keys, ref_template=REF)
    schemas = definitions.get("$defs", {})

    def resolve_ref(model: type[BaseModel], mode: JsonSchemaMode) -> dict[str, Any]:
        return dict(refs[(model, mode)])

    def inline(model: type[BaseModel], mode: JsonSchemaMode) -> dict[str, Any]:
        ref = resolve_ref(model, mode)["$ref"].rsplit("/", 1)[1]
        found: dict[str, Any] = schemas[ref]
        return found

    error_ref = resolve_ref(ErrorBody, "serialization")
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        path = PATH_PARAM.sub(lambda m: "{" + m.group(1) + "}", op.path)
        parameters: list[dict[str, Any]] = [
            {"name": name, "in": "path", "required": True, "schema": _param_schema(name)}
            for name in PATH_PARAM.findall(op.path)
        ]
        if op.query is not None:
            query_schema = inline(op.query, "validation")
            required = set(query_schema.get("required", ()))
            for name, prop in query_schema.get("properties", {}).items():
                parameters.append({"name": name, "in": "query", "required": name in required, "schema": prop})
        responses: dict[str, Any] = {}
        if op.status == 204:
            responses["204"] = {"description": "done"}
        elif op.content_type != "application/json":
            responses[str(op.status)] = {
                "description": "ok",
                "content": {op.content_type: {"schema": {"type": "string"}}},
            }
        else:
            schema: dict[str, Any] = {}
            if op.response is not None:
                schema = resolve_ref(op.response, "serialization")
                if op.many:
                    schema = {"type": "array", "items": schema}
            responses[str(op.status)] = {
                "description": "ok",
                "content": {"application/json": {"schema": schema}},
            }
        for status, description in ERROR_STATUSES.items():
            responses[status] = {
                "description": description,
                "content": {"application/json": {"schema": error_ref}},
            }
        for code in op.errors:
            responses[str(code)] = {
                "description": EXTRA_STATUSES.get(code, "error"),
                "content": {"application/json": {"schema": error_ref}},
            }
        operation: dict[str, Any] = {
            "operationId": op.method.lower() + "_" + re.sub(r"[^a-z0-9]+", "_", path.lower()).strip("_"),
            "summary": op.summary,
            "tags": [op.tag],
            "parameters": parameters,
            "responses": responses,
        }
        if op.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": resolve_ref(op.body, "validation")}},
            }
        if op.auth:
            operation["security"] = [{"bearer": []}]
        paths.setdefault(path, {})[op.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "servers": [{"url": "/api/v1"}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }
