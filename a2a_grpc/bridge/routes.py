"""HTTP+JSON routes compiled from the proto's ``google.api.http`` rules (spec section 11).

:func:`compile_routes` reads every method of ``lf.a2a.v1.A2AService`` with its rule and
``additional_bindings`` and refuses to go on if a method has none: the REST surface is the
proto's, never a second hand-written list. A :class:`Route` works both ways:

* :meth:`Router.match` turns an incoming verb and path into the method and its path variables
  (``/{tenant}/tasks/{id=*}:cancel`` binds ``tenant`` and ``id``);
* :meth:`Route.expand` turns a request message into the verb, path, query and body to send
  (the reverse bridge's REST client). Each path variable is percent-encoded as exactly one
  segment, and a value that is a dot segment (``.``, ``..``) is refused (InvalidParamsError
  naming the field) before anything is sent: an HTTP client would resolve it away.

Query parameters follow section 11.5: camelCase (snake_case also read), booleans ``true`` /
``false``, numbers in decimal, enums by name (``TASK_STATE_WORKING``, or ``working`` for short),
repeated fields by repetition or commas, no nested messages except the well-known scalar-like
ones (``Timestamp``, ``Duration``, wrappers) in their JSON string form. A parameter that names no
field is ignored, like an unknown JSON member (section 5.7).

One documented addition: ``SubscribeToTask`` is also accepted with POST, as section 11.3.2 of the
specification text writes it and the official SDK's REST client sends it; the proto says GET.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from google.api import annotations_pb2, http_pb2  # type: ignore[import-untyped]
from google.protobuf.descriptor import FieldDescriptor, MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message

from a2a_grpc import errors, types
from a2a_grpc._validation import DOT_SEGMENTS, invalid
from a2a_grpc.errors import FieldViolation

__all__ = ["EXTRA_VERBS", "Route", "RouteError", "Router", "compile_routes", "query_to_json"]

EXTRA_VERBS: Mapping[str, tuple[str, ...]] = {"SubscribeToTask": ("POST",)}
"""Verbs accepted besides the proto's, per method (see the module docstring)."""

_VAR = re.compile(r"^\{([a-z_][a-z0-9_]*)(?:=\*)?\}$")
_SCALAR_WKT = frozenset(
    {
        "google.protobuf.Timestamp",
        "google.protobuf.Duration",
        "google.protobuf.FieldMask",
        "google.protobuf.StringValue",
        "google.protobuf.BoolValue",
        "google.protobuf.Int32Value",
        "google.protobuf.Int64Value",
        "google.protobuf.UInt32Value",
        "google.protobuf.UInt64Value",
        "google.protobuf.DoubleValue",
        "google.protobuf.FloatValue",
    }
)


class RouteError(ValueError):
    """The proto's HTTP rules cannot be served (a method without a rule, a template we cannot read)."""


@dataclass(frozen=True, slots=True)
class Route:
    """One HTTP binding of one RPC."""

    method: MethodDescriptor
    verb: str
    template: str
    segments: tuple[str | None, ...]
    """Literal segments, or None where a variable stands."""
    variables: tuple[str, ...]
    """Field names bound by the variables, in path order."""
    custom_verb: str
    """The ``:cancel`` suffix of the last segment, without the colon ("" if none)."""
    body: str
    """``*`` (the whole request is the body) or "" (no body: query parameters)."""
    alias: bool = False
    """An :data:`EXTRA_VERBS` verb, accepted but never sent."""

    @property
    def streaming(self) -> bool:
        return self.method.server_streaming

    def _specificity(self) -> tuple[int, ...]:
        # Literal segments win over variables, earlier positions first: "/tasks/{id}" is
        # tried before "/{tenant}/tasks" for GET /tasks/x.
        return tuple(0 if s is not None else 1 for s in self.segments)

    def match(self, parts: Sequence[str], custom_verb: str) -> dict[str, str] | None:
        if custom_verb != self.custom_verb or len(parts) != len(self.segments):
            return None
        bound: dict[str, str] = {}
        names = iter(self.variables)
        for literal, part in zip(self.segments, parts, strict=True):
            if literal is None:
                if not part:
                    return None
                bound[next(names)] = unquote(part)
            elif literal != part:
                return None
        return bound

    def expand(self, request: Message, encoded: Mapping[str, Any]) -> tuple[str, dict[str, Any], str]:
        """Path, leftover JSON members and the URL query for ``request`` on this route.

        ``encoded`` is the request's ProtoJSON object. Returns ``(path, body, query)``: the body
        holds what the path does not (for ``body: "*"`` routes), the query the same for the others.
        """
        rest = dict(encoded)
        path_parts: list[str] = []
        names = iter(self.variables)
        for literal in self.segments:
            if literal is not None:
                path_parts.append(literal)
                continue
            name = next(names)
            field = request.DESCRIPTOR.fields_by_name[name]
            value = getattr(request, name)
            if not value:
                raise errors.InvalidParamsError(
                    f"{name} is required", field_violations=[FieldViolation(name, "is required")]
                )
            if value in DOT_SEGMENTS:
                # An HTTP client removes these from the path (RFC 3986 5.2.4): the request
                # would reach another resource, e.g. the agent's base path for GetTask("..").
                raise invalid(name, f"{errors.echo(value)} cannot be sent as a URL path segment")
            rest.pop(field.json_name, None)
            # One segment whatever the value holds: "/" becomes %2F, "%" %25, so nothing in it
            # can add, remove or climb segments.
            path_parts.append(quote(str(value), safe=""))
        path = "/" + "/".join(path_parts) + (f":{self.custom_verb}" if self.custom_verb else "")
        if self.body == "*":
            return path, rest, ""
        return path, {}, _encode_query(rest)


def _encode_query(members: Mapping[str, Any]) -> str:
    pairs: list[str] = []
    for key, value in members.items():
        values = value if isinstance(value, list) else [value]
        for v in values:
            text = ("true" if v else "false") if isinstance(v, bool) else str(v)
            pairs.append(f"{quote(key, safe='')}={quote(text, safe='')}")
    return "&".join(pairs)


def _parse_template(template: str) -> tuple[tuple[str | None, ...], tuple[str, ...], str]:
    if not template.startswith("/"):
        raise RouteError(f"path template {template!r} does not start with '/'")
    raw = template[1:].split("/")
    last, sep, custom = (
        raw[-1].rpartition(":") if ":" in raw[-1] and not raw[-1].endswith("}") else ("", "", "")
    )
    if sep:
        raw[-1] = last
    segments: list[str | None] = []
    variables: list[str] = []
    for part in raw:
        if part.startswith("{"):
            m = _VAR.match(part)
            if m is None:
                raise RouteError(
                    f"unsupported variable {part!r} in {template!r} (only {{name}} or {{name=*}})"
                )
            segments.append(None)
            variables.append(m.group(1))
        elif not part or "{" in part or "}" in part:
            raise RouteError(f"unsupported segment {part!r} in {template!r}")
        else:
            segments.append(part)
    return tuple(segments), tuple(variables), custom


def _bindings(rule: http_pb2.HttpRule) -> Iterable[http_pb2.HttpRule]:
    yield rule
    yield from rule.additional_bindings


def _route(method: MethodDescriptor, rule: http_pb2.HttpRule, verb: str | None = None) -> Route:
    kind = rule.WhichOneof("pattern")
    if kind not in ("get", "post", "put", "delete", "patch"):
        raise RouteError(f"{method.full_name}: HTTP rule pattern {kind!r} is not supported")
    template = getattr(rule, kind)
    segments, variables, custom = _parse_template(template)
    for name in variables:
        field = method.input_type.fields_by_name.get(name)
        if field is None or field.type != FieldDescriptor.TYPE_STRING or field.is_repeated:
            raise RouteError(
                f"{method.full_name}: path variable {name!r} is not a string field of the request"
            )
    if rule.body not in ("", "*"):
        raise RouteError(f"{method.full_name}: body {rule.body!r} is not supported (only '*' or none)")
    return Route(
        method, verb or kind.upper(), template, segments, variables, custom, rule.body, verb is not None
    )


def compile_routes(service: ServiceDescriptor = types.A2A_SERVICE) -> list[Route]:
    """Every HTTP binding of every method of ``service``; :class:`RouteError` if one has no rule."""
    routes: list[Route] = []
    for method in service.methods:
        options = method.GetOptions()
        if not options.HasExtension(annotations_pb2.http):
            raise RouteError(f"{method.full_name} has no google.api.http rule: the bridge cannot serve it")
        for binding in _bindings(options.Extensions[annotations_pb2.http]):
            route = _route(method, binding)
            routes.append(route)
            for verb in EXTRA_VERBS.get(method.name, ()):
                routes.append(_route(method, binding, verb))
    return routes


class Router:
    """Finds the route of an incoming request."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes = sorted(routes, key=Route._specificity)
        self._by_method: dict[str, list[Route]] = {}
        for route in self.routes:
            self._by_method.setdefault(route.method.name, []).append(route)

    @staticmethod
    def split(path: str) -> tuple[list[str], str]:
        parts = path[1:].split("/") if path.startswith("/") else path.split("/")
        last, sep, custom = parts[-1].rpartition(":")
        if sep:
            parts[-1] = last
        return parts, custom if sep else ""

    def match(self, verb: str, path: str) -> tuple[Route, dict[str, str]] | tuple[None, list[str]]:
        """``(route, variables)``, or ``(None, allowed verbs)`` (empty: no such path at all)."""
        parts, custom = self.split(path)
        allowed: list[str] = []
        for route in self.routes:
            bound = route.match(parts, custom)
            if bound is None:
                continue
            if route.verb == verb:
                return route, bound
            allowed.append(route.verb)
        return None, sorted(set(allowed))

    def for_method(self, name: str, tenant: str = "") -> Route:
        """The route to call ``name`` on: the tenant binding when a tenant is set, else the plain one."""
        routes = self._by_method.get(name)
        if not routes:
            raise RouteError(f"no route for {name}")
        sendable = [r for r in routes if not r.alias]
        wanted = [r for r in sendable if ("tenant" in r.variables) == bool(tenant)]
        return (wanted or sendable)[0]


def _enum_value(field: FieldDescriptor, text: str, name: str) -> str:
    enum = field.enum_type
    assert enum is not None
    if text in enum.values_by_name:
        return text
    prefix = re.sub(r"(?<!^)(?=[A-Z])", "_", enum.name).upper() + "_"
    long = prefix + text.upper()
    if long in enum.values_by_name:
        return long
    if text.lstrip("-").isdigit():
        return text
    names = ", ".join(v.name for v in enum.values if v.number != 0)
    expected = f"must be a {enum.name} name ({names}), short name or number"
    raise errors.InvalidParamsError(
        f"invalid {name}: {expected}, not {errors.echo(text)}",
        field_violations=[FieldViolation(name, expected)],
    )


def _scalar(field: FieldDescriptor, text: str, name: str) -> Any:
    if field.type == FieldDescriptor.TYPE_BOOL:
        if text in ("true", "false"):
            return text == "true"
        raise errors.InvalidParamsError(
            f"invalid {name}: must be true or false, not {errors.echo(text)}",
            field_violations=[FieldViolation(name, "must be true or false")],
        )
    if field.type == FieldDescriptor.TYPE_ENUM:
        return _enum_value(field, text, name)
    if field.message_type is not None and field.message_type.full_name not in _SCALAR_WKT:
        raise errors.InvalidParamsError(
            f"{name} is a message: send it in a request body, not a query parameter",
            field_violations=[FieldViolation(name, "nested messages cannot be query parameters")],
        )
    return text  # ProtoJSON reads numbers, int64 and well-known types from strings


def query_to_json(method: MethodDescriptor, query: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """The JSON members that the URL query parameters of a request stand for (section 11.5).

    A parameter that names no field of the request is ignored, as unknown JSON members are
    (spec 5.7); a known one with a value that does not fit is refused, naming it.
    """
    fields = method.input_type.fields_by_name
    by_json = {f.json_name: f for f in method.input_type.fields}
    out: dict[str, Any] = {}
    for key, text in query:
        field = by_json.get(key) or fields.get(key)
        if field is None:
            continue
        if field.is_repeated:
            items = out.setdefault(field.json_name, [])
            items.extend(_scalar(field, t, key) for t in text.split(",") if t)
        elif field.json_name in out:
            raise errors.InvalidParamsError(
                f"query parameter {errors.echo(key)} given twice",
                field_violations=[FieldViolation(key, "given more than once")],
            )
        else:
            out[field.json_name] = _scalar(field, text, key)
    return out
