"""HTTP+JSON routes compiled from the proto's ``google.api.http`` rules (spec section 11).

:func:`compile_routes` reads every method of ``lf.a2a.v1.A2AService`` with its rule and
``additional_bindings`` and refuses to go on if a method has none: the REST surface is the
proto's, never a second hand-written list. :class:`Router` works both ways:

* :meth:`Router.match` turns an incoming verb and path into the route and its path variables
  (``/{tenant}/tasks/{id=*}:cancel`` binds ``tenant`` and ``id``);
* :meth:`Router.target` turns a request message into the verb, path, body and query to send
  (the reverse bridge's REST client).

**One reading per path.** A2A's rules overlap: ``GET /tasks/tasks`` fits both ``/tasks/{id}``
(GetTask of task ``tasks``) and ``/{tenant}/tasks`` (ListTasks of tenant ``tasks``). The rule:

1. Literal segments are compared with the raw segment as sent, never decoded: ``%74asks`` is a
   value (``tasks``), never the literal ``tasks``. Variables are percent-decoded once (UTF-8).
   A route with a custom verb (``:cancel``) takes it off the end of the last segment; a route
   without one binds the whole last segment, colons included (``GET /tasks/urn:t:1`` is
   GetTask of ``urn:t:1``, as the official SDK's server and grpc-gateway read it).
2. When several routes fit, the one whose literals come later wins: routes are compared from
   the end of the path (the custom verb first, then the last segment, and so on), and at the
   first place where one has a literal and the other a variable, the literal wins. The end of
   an A2A path names the operation, its start the tenant: ``/tasks/tasks`` is ListTasks for
   tenant ``tasks``, ``/tasks/extendedAgentCard`` the extended card of tenant ``tasks``, while
   ``/tasks/tasks/pushNotificationConfigs`` stays the configs of task ``tasks``. Two routes of
   one verb with the same literals in the same places are refused when the router is built.
3. Building a path (:meth:`Route.expand`), each variable becomes exactly one segment: every
   character but the unreserved ones (letters, digits, ``-._~``) is percent-encoded, and a value
   spelled exactly like a literal segment of any route (``tasks``, ``message``,
   ``extendedAgentCard``, ``pushNotificationConfigs``) has its first character encoded too
   (``%74asks``), so the path reads back as the same operation and values on any server that
   compares literals with raw segments, and the same as before on one that decodes first.
   A value that is a dot segment (``.``, ``..``) is refused (InvalidParamsError naming the
   field) before anything is sent: an HTTP client would resolve it away.

Query parameters (section 11.5) are read and written by :mod:`a2a_grpc.bridge.query`.

One documented addition: ``SubscribeToTask`` (v0.3: ``TaskSubscription``) is also accepted with
POST, as section 11.3.2 of the specification text writes it and the official SDK's REST client
sends it; the proto says GET.

The v0.3 proto (``a2a.v1``, :data:`a2a_grpc.v03.V03_SERVICE`) compiles too: its variables bind
patterns (``/v1/{name=tasks/*}`` binds ``name`` to ``tasks/{segment}``, one ``*`` per segment) and
one rule names a body field (``body: "config"``); :mod:`a2a_grpc.bridge.rest03` serves them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote_to_bytes

from google.api import annotations_pb2, http_pb2  # type: ignore[import-untyped]
from google.protobuf.descriptor import FieldDescriptor, MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message

from a2a_grpc import errors, types
from a2a_grpc._validation import DOT_SEGMENTS, invalid
from a2a_grpc.bridge.query import encode_query
from a2a_grpc.errors import FieldViolation

__all__ = ["EXTRA_VERBS", "Route", "RouteError", "Router", "Target", "compile_routes"]

EXTRA_VERBS: Mapping[str, tuple[str, ...]] = {"SubscribeToTask": ("POST",), "TaskSubscription": ("POST",)}
"""Verbs accepted besides the proto's, per method (see the module docstring)."""

_VAR_PATTERN = re.compile(r"\{([a-z_][a-z0-9_]*)(?:=([A-Za-z0-9._~*/-]+))?\}")
_LITERAL = re.compile(r"[A-Za-z0-9._~-]+")


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
    """``*`` (the whole request is the body), "" (no body: query parameters), or the name of the
    request field the body holds (v0.3's ``config``)."""
    alias: bool = False
    """An :data:`EXTRA_VERBS` verb, accepted but never sent."""
    patterns: tuple[tuple[str, tuple[str | None, ...]], ...] = ()
    """Each variable's field and the segments it binds, in path order (None: a ``*``); empty
    when every variable is one segment. ``{name=tasks/*}`` binds ``name`` to ``tasks/{segment}``."""

    def _patterns(self) -> tuple[tuple[str, tuple[str | None, ...]], ...]:
        return self.patterns or tuple((name, (None,)) for name in self.variables)

    @property
    def streaming(self) -> bool:
        return self.method.server_streaming

    @property
    def rank(self) -> tuple[int, ...]:
        """Which of two routes fitting one path wins: the smaller rank (see the module docstring).

        Read from the end of the path: the custom verb, then the segments last to first; 0 where
        the route has a literal, 1 where it has a variable.
        """
        return (0 if self.custom_verb else 1, *(0 if s is not None else 1 for s in reversed(self.segments)))

    def bind(self, parts: Sequence[str]) -> list[str] | None:
        """The raw (still percent-encoded) segments the variables take from ``parts``, or None if
        the path does not fit. Literals are compared with the raw segments."""
        if len(parts) != len(self.segments):
            return None
        if self.custom_verb:
            last, sep, verb = parts[-1].rpartition(":")
            if not sep or verb != self.custom_verb:
                return None
            parts = [*parts[:-1], last]
        values: list[str] = []
        for literal, part in zip(self.segments, parts, strict=True):
            if literal is None:
                if not part:
                    return None
                values.append(part)
            elif literal != part:
                return None
        return values

    def decode(self, raw: Sequence[str]) -> dict[str, str]:
        """The variables' values from their raw segments: percent-decoded once, UTF-8.

        InvalidParamsError naming the field if a value's bytes are not UTF-8 text.
        """
        values: list[str] = []
        for name, part in zip(self.variables, raw, strict=True):
            try:
                data = part.encode("latin-1")  # the request target's bytes, as HttpRequest reads them
            except UnicodeEncodeError:
                data = part.encode("utf-8")  # a path given as text
            try:
                values.append(unquote_to_bytes(data).decode("utf-8"))
            except UnicodeDecodeError:
                raise invalid(name, "the path segment is not percent-encoded UTF-8 text") from None
        taken = iter(values)
        return {
            name: "/".join(next(taken) if p is None else p for p in pattern)
            for name, pattern in self._patterns()
        }

    def expand(
        self, request: Message, encoded: Mapping[str, Any], literals: frozenset[str] = frozenset()
    ) -> tuple[str, dict[str, Any], str]:
        """Path, leftover JSON members and the URL query for ``request`` on this route.

        ``encoded`` is the request's ProtoJSON object; a value in ``literals`` (the literal
        segments of every route, :attr:`Router.literals`) is sent with its first character
        percent-encoded. Returns ``(path, body, query)``: the body holds what the path does not
        (for ``body: "*"`` routes), the query the same for the others.
        """
        rest = dict(encoded)
        pieces: list[str] = []
        for name, pattern in self._patterns():
            field = request.DESCRIPTOR.fields_by_name[name]
            value = getattr(request, name)
            if not value:
                raise errors.InvalidParamsError(
                    f"{name} is required", field_violations=[FieldViolation(name, "is required")]
                )
            given = value.split("/") if len(pattern) > 1 else [value]
            fits = len(given) == len(pattern) and all(
                p is None or p == g for p, g in zip(pattern, given, strict=False)
            )
            if not fits:
                shape = "/".join("*" if p is None else p for p in pattern)
                raise invalid(name, f"{errors.echo(value)} does not have the form {shape}")
            for p, piece in zip(pattern, given, strict=True):
                if p is not None:
                    continue
                if piece in DOT_SEGMENTS or not piece:
                    # An HTTP client removes these from the path (RFC 3986 5.2.4): the request
                    # would reach another resource, e.g. the agent's base path for GetTask("..").
                    raise invalid(name, f"{errors.echo(value)} cannot be sent as a URL path segment")
                pieces.append(piece)
            rest.pop(field.json_name, None)
        taken = iter(pieces)
        path_parts = [s if s is not None else _segment(next(taken), literals) for s in self.segments]
        path = "/" + "/".join(path_parts) + (f":{self.custom_verb}" if self.custom_verb else "")
        if self.body:  # a named body too: the whole request is sent (what v0.3 servers read)
            return path, rest, ""
        return path, {}, encode_query(rest)


def _segment(value: str, literals: frozenset[str]) -> str:
    """``value`` as exactly one path segment that no route reads as a literal.

    Everything but the unreserved characters is encoded ("/" becomes %2F, "%" %25, ":" %3A), so
    nothing in it can add, remove or climb segments or end in a custom verb; a value spelled like
    a literal gets its first character encoded, since literals are compared with raw segments.
    """
    encoded = quote(value, safe="")
    if value in literals:
        encoded = f"%{ord(value[0]):02X}{encoded[1:]}"  # literals are ASCII: one byte
    return encoded


def _parse_template(template: str) -> tuple[tuple[str | None, ...], tuple[str, ...], str]:
    """Literal segments (None for a variable), variable names and custom verb of a path template.

    What the router can serve: ``/`` then segments that are a literal or a one-segment variable
    (``{name}`` or ``{name=*}``), then an optional ``:verb``. Literals and the verb are unreserved
    characters only (letters, digits, ``-._~``), so that a literal is never spelled two ways in a
    path; anything else is a :class:`RouteError` naming the template. A variable may also take a
    pattern of literals and ``*`` segments (``{name=tasks/*}``, as the v0.3 proto's rules write):
    its name then stands once per ``*`` (see :func:`_parse`).
    """
    segments, variables, custom, _ = _parse(template)
    return segments, variables, custom


_Pattern = tuple[str | None, ...]
"""The segments one variable binds: literals, and None for each ``*``."""


def _parse(
    template: str,
) -> tuple[tuple[str | None, ...], tuple[str, ...], str, tuple[tuple[str, _Pattern], ...]]:
    """:func:`_parse_template`, plus each variable's pattern in path order."""
    if not template.startswith("/"):
        raise RouteError(f"path template {template!r} does not start with '/'")
    if "\x00" in template:  # the marker of a variable cut out below
        raise RouteError(f"unsupported segment in {template!r}")
    body = template[1:]
    custom = ""
    colon = body.rfind(":")
    if colon > max(body.rfind("/"), body.rfind("}")):
        body, custom = body[:colon], body[colon + 1 :]
        if not _LITERAL.fullmatch(custom):
            raise RouteError(f"unsupported verb {custom!r} in {template!r}")
    # A variable's pattern may hold '/': each {...} is cut out before the path is split.
    found: list[tuple[str, str, str]] = []

    def hole(m: re.Match[str]) -> str:
        found.append((m.group(1), m.group(2) or "*", m.group(0)))
        return f"\x00{len(found) - 1}\x00"

    holed = _VAR_PATTERN.sub(hole, body)
    segments: list[str | None] = []
    variables: list[str] = []
    patterns: list[tuple[str, _Pattern]] = []
    for part in holed.split("/"):
        if part.startswith("\x00") and part.endswith("\x00") and part[1:-1].isdigit():
            name, pattern, _ = found[int(part[1:-1])]
            if any(name == seen for seen, _ in patterns):
                raise RouteError(f"variable {name!r} bound twice in {template!r}")
            shape = _pattern(pattern, template)
            patterns.append((name, shape))
            for literal in shape:
                segments.append(literal)
                if literal is None:
                    variables.append(name)
        elif _LITERAL.fullmatch(part):
            segments.append(part)
        else:
            shown = re.sub("\x00(\\d+)\x00", lambda m: found[int(m.group(1))][2], part)
            kind = "variable" if part.startswith(("{", "\x00")) else "segment"
            raise RouteError(f"unsupported {kind} {shown!r} in {template!r} (only {{name}} or {{name=*}})")
    return tuple(segments), tuple(variables), custom, tuple(patterns)


def _pattern(pattern: str, template: str) -> _Pattern:
    """The segments of a variable's pattern: ``*`` (None) or literals, at least one ``*``."""
    shape = tuple(None if p == "*" else p for p in pattern.split("/"))
    if None not in shape or not all(p is None or _LITERAL.fullmatch(p) for p in shape):
        raise RouteError(f"unsupported variable pattern {pattern!r} in {template!r}")
    return shape


def _bindings(rule: http_pb2.HttpRule) -> Iterable[http_pb2.HttpRule]:
    yield rule
    yield from rule.additional_bindings


def _route(method: MethodDescriptor, rule: http_pb2.HttpRule, verb: str | None = None) -> Route:
    kind = rule.WhichOneof("pattern")
    if kind not in ("get", "post", "put", "delete", "patch"):
        raise RouteError(f"{method.full_name}: HTTP rule pattern {kind!r} is not supported")
    template = getattr(rule, kind)
    segments, variables, custom, patterns = _parse(template)
    for name in variables:
        field = method.input_type.fields_by_name.get(name)
        if field is None or field.type != FieldDescriptor.TYPE_STRING or field.is_repeated:
            raise RouteError(
                f"{method.full_name}: path variable {name!r} is not a string field of the request"
            )
    body = method.input_type.fields_by_name.get(rule.body)
    if rule.body not in ("", "*") and (body is None or body.message_type is None or body.is_repeated):
        raise RouteError(
            f"{method.full_name}: body {rule.body!r} is not supported (only '*', none, or a message field)"
        )
    simple = all(pattern == (None,) for _, pattern in patterns)
    return Route(
        method,
        verb or kind.upper(),
        template,
        segments,
        variables,
        custom,
        rule.body,
        verb is not None,
        () if simple else patterns,
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


@dataclass(frozen=True, slots=True)
class Target:
    """Where and how to send one request (:meth:`Router.target`)."""

    route: Route
    path: str
    """The path under the agent's URL, each variable one percent-encoded segment."""
    body: dict[str, Any] | None
    """The JSON body (``body: "*"`` routes), else None."""
    query: str
    """The URL query (without ``?``), "" if none."""


class Router:
    """Finds the route of an incoming request, and the path of an outgoing one."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes = list(routes)
        self._by_method: dict[str, list[Route]] = {}
        shapes: dict[tuple[object, ...], Route] = {}
        for route in self.routes:
            self._by_method.setdefault(route.method.name, []).append(route)
            shape = (route.verb, route.segments, route.custom_verb)
            other = shapes.setdefault(shape, route)
            if other is not route:
                raise RouteError(
                    f"{route.verb} {route.template} ({route.method.full_name}) and {other.template} "
                    f"({other.method.full_name}) read every path alike"
                )
        self.literals = frozenset(s for route in self.routes for s in route.segments if s is not None)
        """Every literal segment of every route: path values spelled like one are encoded."""

    @staticmethod
    def split(path: str) -> list[str]:
        """The raw segments of ``path`` (its custom verb, if any, still on the last one)."""
        return path[1:].split("/") if path.startswith("/") else path.split("/")

    def match(self, verb: str, path: str) -> tuple[Route, dict[str, str]] | tuple[None, list[str]]:
        """``(route, variables)``, or ``(None, allowed verbs)`` (empty: no such path at all).

        ``path`` is the request target's path as sent, its bytes read as latin-1 (not decoded).
        InvalidParamsError if the winning route's variables are not percent-encoded UTF-8.
        """
        parts = self.split(path)
        best: tuple[Route, list[str]] | None = None
        allowed: set[str] = set()
        for route in self.routes:
            raw = route.bind(parts)
            if raw is None:
                continue
            if route.verb != verb:
                allowed.add(route.verb)
            elif best is None or route.rank < best[0].rank:
                best = (route, raw)
        if best is None:
            return None, sorted(allowed)
        return best[0], best[0].decode(best[1])

    def for_method(self, name: str, tenant: str = "") -> Route:
        """The route to call ``name`` on: the tenant binding when a tenant is set, else the plain one."""
        routes = self._by_method.get(name)
        if not routes:
            raise RouteError(f"no route for {name}")
        sendable = [r for r in routes if not r.alias]
        wanted = [r for r in sendable if ("tenant" in r.variables) == bool(tenant)]
        return (wanted or sendable)[0]

    def target(self, name: str, request: Message, encoded: Mapping[str, Any]) -> Target:
        """The route, path, body and query that send ``request`` (RPC ``name``, ProtoJSON ``encoded``).

        The path reads back, through :meth:`match`, as this route with the request's values.
        """
        route = self.for_method(name, getattr(request, "tenant", ""))
        path, body, query = route.expand(request, encoded, self.literals)
        return Target(route, path, body if route.body else None, query)
