"""An A2A error's details as both JSON bindings carry them: ``google.rpc`` messages in ProtoJSON.

The ``ErrorInfo`` (reason, domain ``a2a-protocol.org``, metadata) and, for validation failures,
the ``BadRequest`` (field violations) that gRPC carries in its status trailer, as ``@type``d
ProtoJSON ``Any`` objects: the ``data`` of a JSON-RPC error (:mod:`a2a_grpc.bridge.jsonrpc`) and the
``details`` of an HTTP+JSON ``google.rpc.Status`` body (:mod:`a2a_grpc.bridge.rest`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from a2a_grpc.errors import DOMAIN, DOMAINS, A2AError, FieldViolation

__all__ = [
    "BAD_REQUEST_TYPE",
    "ERROR_INFO_TYPE",
    "detail_list",
    "read_details",
    "string_map",
    "typed_details",
]

ERROR_INFO_TYPE = "type.googleapis.com/google.rpc.ErrorInfo"
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"


def detail_list(err: A2AError) -> list[dict[str, Any]]:
    """The error's details as ProtoJSON ``Any`` objects: an ErrorInfo, then a BadRequest if any."""
    data: list[dict[str, Any]] = []
    if err.spec.reason:
        data.append(
            {
                "@type": ERROR_INFO_TYPE,
                "reason": err.spec.reason,
                "domain": err.spec.domain,
                "metadata": dict(err.metadata),
            }
        )
    if err.field_violations:
        violations = [{"field": v.field, "description": v.description} for v in err.field_violations]
        data.append({"@type": BAD_REQUEST_TYPE, "fieldViolations": violations})
    return data


def string_map(raw: object) -> dict[str, str]:
    """A JSON object as ErrorInfo metadata (string values; others as their JSON text); {} otherwise."""
    if not isinstance(raw, Mapping):
        return {}
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()}


def typed_details(data: object) -> list[Mapping[str, Any]]:
    """The ``@type``d objects of a details list, a ``{"details": [...]}`` object or a single detail."""
    if isinstance(data, Mapping) and isinstance(data.get("details"), list):
        data = data["details"]
    if isinstance(data, Mapping) and "@type" in data:
        data = [data]
    return [d for d in data if isinstance(d, Mapping)] if isinstance(data, list) else []


def read_details(
    details: list[Mapping[str, Any]],
) -> tuple[str | None, dict[str, str], list[FieldViolation]]:
    """The ErrorInfo reason (None without one of our domain), its metadata, and the field violations."""
    reason: str | None = None
    metadata: dict[str, str] = {}
    violations: list[FieldViolation] = []
    for d in details:
        kind = d.get("@type")
        kind = kind if isinstance(kind, str) else ""
        if kind.endswith("/google.rpc.ErrorInfo") and reason is None and d.get("domain", DOMAIN) in DOMAINS:
            reason, metadata = str(d.get("reason", "")), string_map(d.get("metadata"))
        elif kind.endswith("/google.rpc.BadRequest") and isinstance(d.get("fieldViolations"), list):
            violations += [
                FieldViolation(str(v.get("field", "")), str(v.get("description", "")))
                for v in d["fieldViolations"]
                if isinstance(v, Mapping)
            ]
    return reason, metadata, violations
