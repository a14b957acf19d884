"""Property-based tests (hypothesis) of what reads hostile input: the JSON codec, the route matcher
and the JSON-RPC envelope.

* Codec (:mod:`a2a_grpc.bridge.transcoding`): any JSON value, as bytes or already parsed, decoded
  as any request (strictly) or response (leniently) either gives a message or raises
  InvalidParamsError / ParseError, never another exception; what is accepted keeps its integer
  and enum values; any valid message generated from the descriptors comes back equal through
  ``encode`` then ``decode``.
* Routes (:mod:`a2a_grpc.bridge.routes`): any path (percent escapes, unicode, ``//``, dots, colons,
  thousands of segments) matches or not, or raises InvalidParamsError, nothing else; for every
  RPC and every tenant and id drawn from an alphabet of literals, colons, slashes and escapes,
  the path built for the request is matched back to the same route with the same values.
* The bridge app in process (``BridgeApp`` over the reference agent, called as ASGI, no socket):
  any body posted to ``/`` and any path asked of the HTTP+JSON routes is answered, never with
  HTTP 500 nor JSON-RPC -32603, and an echo succeeds right after.

Runs are deterministic: every test uses hypothesis's built-in ``ci`` profile (derandomized, no
example database, no deadline) with a modest number of examples, so the file takes seconds and a
failure is reproduced by running it again. To search wider locally, raise ``EXAMPLES``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, MutableMapping
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from a2a_grpc import errors
from a2a_grpc.bridge import transcoding
from a2a_grpc.bridge.app import BridgeApp
from a2a_grpc.bridge.routes import RouteError, Router, _parse_template, compile_routes
from a2a_grpc.bridge.settings import BridgeSettings
from a2a_grpc.bridge.upstream import LocalUpstream
from a2a_grpc.reference_agent import ReferenceAgent
from a2a_grpc.server import A2AServer, ServerSettings
from a2a_grpc.service import METHODS
from a2a_grpc.tasks import InMemoryTaskStore

EXAMPLES = 150
"""Examples per property (the app properties take a third of it: each example is a request)."""
PROPERTY = settings(
    settings.get_profile("ci"),
    max_examples=EXAMPLES,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
APP_PROPERTY = settings(PROPERTY, max_examples=EXAMPLES // 3)
ROUTER = Router(compile_routes())
REQUESTS = [method.request for method in METHODS.values()]
RESPONSES = sorted({method.response for method in METHODS.values()}, key=lambda c: c.DESCRIPTOR.full_name)
TYPED = (errors.InvalidParamsError, errors.ParseError)
WAIT = 10.0


# -- strategies: JSON -----------------------------------------------------------------------------

ODD_STRINGS = [
    "",
    "ROLE_USER",
    "TASK_STATE_WORKING",
    "working",
    "2025-01-02T03:04:05Z",
    "9999-12-31T23:59:59.999999999Z",
    "0000-01-01T00:00:00Z",
    "1.5s",
    "AAAA",
    "A",
    "-_-_AA==",
    "NaN",
    "Infinity",
    "1e3",
    "18446744073709551616",
    "\u202e\u0000\ufeff",
]
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([2**31, -(2**31) - 1, 2**53 + 1, 2**63, 2**64, -(2**63) - 1, 10**30, 10**400])
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(ODD_STRINGS)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=25,
)


def _member_names(descriptor: Descriptor) -> st.SearchStrategy[str]:
    names = sorted({f.json_name for f in descriptor.fields} | {f.name for f in descriptor.fields})
    return st.sampled_from(names) if names else st.text(max_size=8)


def shaped(descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy[Any]:
    """JSON objects whose members are mostly the message's own (to reach deep into the codec),
    holding anything: well-shaped sub-objects, arrays of them, or any JSON value."""
    if depth > 3 or descriptor.full_name.startswith("google.protobuf."):
        return json_values

    def member(field: FieldDescriptor) -> st.SearchStrategy[Any]:
        sub = field.message_type
        if sub is None or sub.GetOptions().map_entry:
            return json_values
        inner = st.deferred(lambda: shaped(sub, depth + 1))
        return (st.lists(inner, max_size=3) if field.is_repeated else inner) | json_values

    own = st.fixed_dictionaries({}, optional={f.json_name: member(f) for f in descriptor.fields})
    other = st.dictionaries(_member_names(descriptor) | st.text(max_size=6), json_values, max_size=3)
    return st.tuples(own, other).map(lambda pair: {**pair[1], **pair[0]})


# -- strategies: valid messages, from the descriptors --------------------------------------------

_INT_RANGE = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}
struct_json = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=10,
)

hostile_struct_json = st.recursive(
    st.none() | st.booleans() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=10,
)


def scalar_values(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    if field.type in _INT_RANGE:
        low, high = _INT_RANGE[field.type]
        return st.integers(low, high)
    if field.type == FieldDescriptor.TYPE_ENUM:
        assert field.enum_type is not None
        return st.sampled_from([v.number for v in field.enum_type.values])
    return {
        FieldDescriptor.TYPE_BOOL: st.booleans(),
        FieldDescriptor.TYPE_STRING: st.text(max_size=12),
        FieldDescriptor.TYPE_BYTES: st.binary(max_size=12),
        FieldDescriptor.TYPE_DOUBLE: st.floats(allow_nan=False, allow_infinity=False),
        FieldDescriptor.TYPE_FLOAT: st.floats(width=32, allow_nan=False, allow_infinity=False),
    }[field.type]


@st.composite
def messages(draw: st.DrawFn, descriptor: Descriptor, depth: int = 0, hostile: bool = False) -> Message:
    """A valid message of ``descriptor``: every field maybe set, one member of each oneof at most.

    ``hostile``: what a gRPC peer can send that JSON cannot hold too (Timestamps outside years
    1-9999, negative nanos, NaN and infinities in Struct values).
    """
    message = message_factory.GetMessageClass(descriptor)()
    name = descriptor.full_name
    if name == "google.protobuf.Timestamp":
        seconds = st.integers(-(2**63), 2**63 - 1) if hostile else st.integers(-62135596800, 253402300799)
        nanos = st.integers(-(2**31), 2**31 - 1) if hostile else st.integers(0, 999_999_999)
        message.seconds = draw(seconds)  # type: ignore[attr-defined]
        message.nanos = draw(nanos)  # type: ignore[attr-defined]
        return message
    values = hostile_struct_json if hostile else struct_json
    if name == "google.protobuf.Struct":
        message.update(draw(st.dictionaries(st.text(max_size=6), values, max_size=3)))  # type: ignore[attr-defined]
        return message
    if name == "google.protobuf.Value":
        value = draw(values)
        if isinstance(value, float):
            message.number_value = value  # type: ignore[attr-defined]
        else:
            json_format.ParseDict(value, message)
        return message
    if name == "google.protobuf.ListValue":
        message.extend(draw(st.lists(values, max_size=3)))  # type: ignore[attr-defined]
        return message
    chosen = {oneof.name: draw(st.sampled_from([None, *oneof.fields])) for oneof in descriptor.oneofs}
    for field in descriptor.fields:
        oneof = field.containing_oneof
        if oneof is not None and chosen[oneof.name] is not field:
            continue
        if oneof is None and not draw(st.booleans()):
            continue
        sub = field.message_type
        if sub is not None and depth >= 3 and not sub.full_name.startswith("google.protobuf."):
            continue
        target = getattr(message, field.name)
        if sub is not None and sub.GetOptions().map_entry:
            key_field, value_field = sub.fields_by_name["key"], sub.fields_by_name["value"]
            for key in draw(st.lists(scalar_values(key_field), max_size=2, unique=True)):
                if value_field.message_type is not None:
                    target[key].CopyFrom(draw(messages(value_field.message_type, depth + 1, hostile)))
                else:
                    target[key] = draw(scalar_values(value_field))
        elif sub is not None and field.is_repeated:
            for element in draw(st.lists(messages(sub, depth + 1, hostile), max_size=2)):
                target.add().CopyFrom(element)
        elif sub is not None:
            target.CopyFrom(draw(messages(sub, depth + 1, hostile)))
        elif field.is_repeated:
            target.extend(draw(st.lists(scalar_values(field), max_size=3)))
        else:
            setattr(message, field.name, draw(scalar_values(field)))
    return message


# -- the JSON codec -------------------------------------------------------------------------------


def decodes_or_refuses(data: Any, cls: type[Message], lenient: bool) -> Message | None:
    """The message ``data`` decodes to, or None for a typed refusal (anything else fails the test)."""
    try:
        return transcoding.decode(data, cls, lenient=lenient)
    except TYPED as exc:
        refusal = exc
    assert refusal.message  # says what is wrong
    return None


@PROPERTY
@given(st.data(), st.booleans())
def test_any_json_value_decodes_or_is_refused_with_a_typed_error(data: st.DataObject, lenient: bool) -> None:
    cls = data.draw(st.sampled_from(RESPONSES if lenient else REQUESTS))
    value = data.draw(shaped(cls.DESCRIPTOR) | json_values)
    decodes_or_refuses(value, cls, lenient)


@PROPERTY
@given(st.sampled_from(REQUESTS), st.data())
def test_any_json_text_decodes_or_is_refused_with_a_typed_error(
    cls: type[Message], data: st.DataObject
) -> None:
    value = data.draw(shaped(cls.DESCRIPTOR) | json_values)
    # json.dumps writes integers of any size, and lone surrogates as \ud800 escapes.
    text = json.dumps(value, ensure_ascii=data.draw(st.booleans()))
    body = data.draw(
        st.sampled_from([text.encode(), text.encode()[: len(text) // 2], b"\xff" + text.encode()])
    )
    with contextlib.suppress(TYPED):
        transcoding.from_json(body, cls)


@PROPERTY
@given(st.sampled_from(REQUESTS), st.data())
def test_what_is_accepted_keeps_its_numbers(cls: type[Message], data: st.DataObject) -> None:
    """An integer or enum number the codec accepts is the number the message holds (never
    truncated, wrapped or rounded)."""
    numeric = [
        f
        for f in cls.DESCRIPTOR.fields
        if (f.type in _INT_RANGE or f.type == FieldDescriptor.TYPE_ENUM) and not f.is_repeated
    ]
    if not numeric:
        return
    field = data.draw(st.sampled_from(numeric))
    number = data.draw(
        st.integers()
        | st.sampled_from([2**31, 2**32 + 3, 2**40, -(2**31) - 1, 2**63, 2**64 + 1])
        | st.floats(allow_nan=False, allow_infinity=False)
    )
    decoded = decodes_or_refuses({field.json_name: number}, cls, lenient=False)
    if decoded is not None:
        assert getattr(decoded, field.name) == number, (field.name, number)


@PROPERTY
@given(st.sampled_from([*REQUESTS, *RESPONSES]).flatmap(lambda cls: messages(cls.DESCRIPTOR)))
def test_a_valid_message_round_trips_through_json(message: Message) -> None:
    encoded = transcoding.encode(message)
    again = transcoding.decode(transcoding.loads(transcoding.dumps(encoded)), type(message))
    assert again == message
    assert transcoding.encode(again) == encoded


@PROPERTY
@given(st.sampled_from([*REQUESTS, *RESPONSES]).flatmap(lambda cls: messages(cls.DESCRIPTOR, hostile=True)))
def test_any_message_encodes_or_is_refused_with_a_typed_error(message: Message) -> None:
    """What a gRPC caller sends the reverse bridge, or a gRPC agent answers the HTTP bridge."""
    try:
        encoded = transcoding.encode(message)
    except errors.InvalidParamsError as exc:
        refusal = exc
    else:
        assert transcoding.loads(transcoding.dumps(encoded)) == encoded
        return
    assert [v.field for v in refusal.field_violations] != [""]  # the field is named


# -- the route matcher ----------------------------------------------------------------------------

LITERALS = sorted(ROUTER.literals)
path_text = st.text(
    alphabet=st.sampled_from(
        ["/", ":", "%", ".", "2", "F", "f", "7", "4", "a", "\u00e9", "\u2603", "\x00", " ", "?"]
    )
    | st.characters(),
    max_size=60,
)
segments = st.sampled_from(
    [*LITERALS, "", ".", "..", "%", "%2F", "%ff", "%74asks", "a:b", "message:send"]
) | st.text(max_size=8)
paths = (
    path_text.map(lambda text: "/" + text)
    | st.lists(segments, max_size=7).map(lambda parts: "/" + "/".join(parts))
    | st.lists(segments, min_size=1, max_size=6).map(
        lambda parts: "/" + "/".join(parts) + ":" + parts[-1]  # a custom verb of sorts
    )
    | st.binary(max_size=60).map(lambda raw: "/" + raw.decode("latin-1"))
)
VERBS = st.sampled_from(["GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "get", ""])


@PROPERTY
@given(VERBS, paths)
def test_any_path_matches_or_is_refused_with_a_typed_error(verb: str, path: str) -> None:
    try:
        route, found = ROUTER.match(verb, path)
    except errors.InvalidParamsError:
        return
    if route is None:
        assert isinstance(found, list)
        assert verb not in found
    else:
        assert isinstance(found, dict)
        assert set(found) == set(route.variables)
        assert all(found.values())


templates = st.lists(
    st.sampled_from(
        ["tasks", "{id}", "{id=*}", "{tenant}", "a.b", "", ":", "{", "}", "{x=**}", "*", "%", "\n"]
    )
    | st.text(max_size=6),
    max_size=5,
).map(lambda parts: "/" + "/".join(parts)) | st.text(max_size=30)


@PROPERTY
@given(templates, st.sampled_from(["", ":cancel", ":", ":a:b", ":{v}"]))
def test_a_template_is_read_exactly_or_refused(template: str, verb: str) -> None:
    """The proto's path templates: what the parser accepts it reads back exactly (grpc-gateway's
    httprule is fuzzed the same way); everything else is a RouteError, never another exception."""
    template += verb
    try:
        segments, variables, custom = _parse_template(template)
    except RouteError:
        return
    names = iter(variables)
    rendered = "/" + "/".join(s if s is not None else "{" + next(names) + "}" for s in segments)
    assert rendered + (f":{custom}" if custom else "") == template.replace("=*}", "}")
    assert len(set(variables)) == len(variables)
    assert all(s is None or ("%" not in s and ":" not in s) for s in segments)


def test_a_path_of_a_hundred_thousand_segments_is_no_route() -> None:
    assert ROUTER.match("GET", "/tasks" * 100_000) == (None, [])
    assert ROUTER.match("GET", "/" + "%" * 1_000_000) == (None, [])


hostile_values = st.sampled_from(
    [*LITERALS, "message:send", "tasks:cancel", "%74asks", "card", "a/b", "..a"]
) | st.text(
    alphabet=st.sampled_from([*"tasksmeg:/%.?#;\\ 7A", "\u00e9", "\U0001f600", "\u2028"]),
    min_size=1,
    max_size=10,
)


@PROPERTY
@given(st.sampled_from(sorted(METHODS)), st.data())
def test_every_built_path_matches_back_to_its_request(name: str, data: st.DataObject) -> None:
    tenant = data.draw(st.just("") | hostile_values)
    request = METHODS[name].request(tenant=tenant)
    route = ROUTER.for_method(name, tenant)
    for field in route.variables:
        if field != "tenant":
            setattr(request, field, data.draw(hostile_values))
    values = {f: getattr(request, f) for f in route.variables}
    if {".", ".."} & set(values.values()):
        with pytest.raises(errors.InvalidParamsError):
            ROUTER.target(name, request, transcoding.encode(request))
        return
    target = ROUTER.target(name, request, transcoding.encode(request))
    assert target.route is route
    matched, bound = ROUTER.match(route.verb, target.path)
    assert matched is route, target.path
    assert bound == values, target.path


# -- the bridge app, in process -------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def call(
    app: BridgeApp, verb: str, raw_path: bytes, body: bytes = b"", content_type: str = "application/json"
) -> Answer:
    """One request to ``app`` as an HTTP server would make it (ASGI), answered within WAIT."""
    done = asyncio.Event()
    sent: list[MutableMapping[str, Any]] = []
    delivered = False

    async def receive() -> MutableMapping[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await done.wait()  # a stream's disconnect watcher: the client stays until the answer ends
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            done.set()

    path, _, query = raw_path.partition(b"?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": verb,
        "scheme": "http",
        "path": path.decode("latin-1"),
        "raw_path": path,
        "query_string": query,
        "root_path": "",
        "headers": [
            (b"content-type", content_type.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"a2a-version", b"1.0"),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }
    async with asyncio.timeout(WAIT):
        await app(scope, receive, send)
    done.set()
    start = next(m for m in sent if m["type"] == "http.response.start")
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in start.get("headers", [])}
    return Answer(start["status"], headers, b"".join(m.get("body", b"") for m in sent[1:]))


def echo_envelope(text: str = "echo still here") -> bytes:
    message = {"messageId": "m-ok", "role": "ROLE_USER", "parts": [{"text": text}]}
    return json.dumps(
        {"jsonrpc": "2.0", "id": "ok", "method": "SendMessage", "params": {"message": message}}
    ).encode()


async def assert_still_serving(app: BridgeApp) -> None:
    answer = await call(app, "POST", b"/", echo_envelope())
    assert answer.status == 200, answer.body
    assert answer.json()["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def app() -> AsyncIterator[BridgeApp]:
    server = A2AServer(ReferenceAgent(), InMemoryTaskStore(), ServerSettings(host="127.0.0.1", port=0))
    await server.start()
    try:
        assert server.handler is not None
        yield BridgeApp(
            LocalUpstream(server.handler), BridgeSettings(heartbeat_seconds=0.05, first_event_wait=0.5)
        )
    finally:
        await server.stop(grace=0.2)
        await server.store.close()


methods_named = st.sampled_from([*sorted(METHODS), "", "sendMessage", "message/send", "tasks/get", "\u0000"])
params = (
    st.sampled_from([{}, [], None])
    | json_values
    | st.sampled_from(REQUESTS).flatmap(lambda cls: shaped(cls.DESCRIPTOR))
)
envelopes = st.fixed_dictionaries(
    {},
    optional={
        "jsonrpc": st.sampled_from(["2.0", "1.0", 2.0, None]),
        "id": st.none()
        | st.integers()
        | st.sampled_from([10**400, 2**64, -(2**63) - 1, 1.5, True])
        | st.text(max_size=12)
        | st.text(min_size=300, max_size=400)
        | json_values,
        "method": methods_named | json_values,
        "params": params,
    },
)
bodies = (
    envelopes.map(lambda envelope: json.dumps(envelope).encode())
    | st.lists(envelopes, max_size=3).map(lambda batch: json.dumps(batch).encode())
    | json_values.map(lambda value: json.dumps(value).encode())
    | st.binary(max_size=80)
    | st.sampled_from(
        [
            b"",
            b"{",
            b"[]",
            b"null",
            b'{"jsonrpc":"2.0","id":1,"method":"GetTask","params":' + b"[" * 2000,
            b'{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{"metadata":'
            + b'{"a":' * 900
            + b"1"
            + b"}" * 902,
        ]
    )
)


@pytest.mark.asyncio(loop_scope="module")
@APP_PROPERTY
@given(body=bodies, content_type=st.sampled_from(["application/json", "application/a2a+json", "text/plain"]))
async def test_any_jsonrpc_body_is_answered_without_an_internal_error(
    app: BridgeApp, body: bytes, content_type: str
) -> None:
    answer = await call(app, "POST", b"/", body, content_type)
    assert answer.status != 500, answer.body
    if answer.headers.get("content-type", "").startswith("text/event-stream"):
        assert b'"code":-32603' not in answer.body, answer.body
    else:
        reply = answer.json()
        if "error" in reply:
            assert reply["error"]["code"] != -32603, reply
    await assert_still_serving(app)


@pytest.mark.asyncio(loop_scope="module")
@APP_PROPERTY
@given(verb=VERBS.filter(bool), path=paths)
async def test_any_rest_path_is_answered_without_an_internal_error(
    app: BridgeApp, verb: str, path: str
) -> None:
    answer = await call(app, verb, path.encode("utf-8", "replace"))
    assert answer.status != 500, answer.body
    await assert_still_serving(app)
