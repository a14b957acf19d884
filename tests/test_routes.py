"""HTTP+JSON routes from the proto's google.api.http rules: compiling, matching, query parameters, expand."""

from __future__ import annotations

import dataclasses
import itertools
import re
from typing import Any
from urllib.parse import parse_qsl

import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message

from a2a_grpc import errors, types
from a2a_grpc.bridge import transcoding
from a2a_grpc.bridge.query import query_to_json
from a2a_grpc.bridge.routes import Route, RouteError, Router, _parse_template, compile_routes
from tests.bridge_http_peers import probe_file

# Spec section 11.3 / the proto's rules, written out by hand: a route the compiler invents or
# loses shows up here, not only as a difference between two readings of the same descriptor.
EXPECTED = {
    "SendMessage": ("POST", "/message:send"),
    "SendStreamingMessage": ("POST", "/message:stream"),
    "GetTask": ("GET", "/tasks/{id=*}"),
    "ListTasks": ("GET", "/tasks"),
    "CancelTask": ("POST", "/tasks/{id=*}:cancel"),
    "SubscribeToTask": ("GET", "/tasks/{id=*}:subscribe"),
    "CreateTaskPushNotificationConfig": ("POST", "/tasks/{task_id=*}/pushNotificationConfigs"),
    "GetTaskPushNotificationConfig": ("GET", "/tasks/{task_id=*}/pushNotificationConfigs/{id=*}"),
    "ListTaskPushNotificationConfigs": ("GET", "/tasks/{task_id=*}/pushNotificationConfigs"),
    "GetExtendedAgentCard": ("GET", "/extendedAgentCard"),
    "DeleteTaskPushNotificationConfig": ("DELETE", "/tasks/{task_id=*}/pushNotificationConfigs/{id=*}"),
}
ROUTES = compile_routes()
ROUTER = Router(ROUTES)
LIST_TASKS = types.A2A_SERVICE.methods_by_name["ListTasks"]
PROBE = probe_file()
PROBE_LIST = PROBE.services_by_name["ProbeService"].methods_by_name["ListProbes"]


def request_class(method: MethodDescriptor) -> type[Message]:
    return message_factory.GetMessageClass(method.input_type)


# -- compiling ------------------------------------------------------------------------------------


def test_every_rpc_has_its_plain_and_its_tenant_route() -> None:
    assert set(EXPECTED) == {m.name for m in types.A2A_SERVICE.methods}
    for method in types.A2A_SERVICE.methods:
        verb, template = EXPECTED[method.name]
        sent = sorted(
            ((r.verb, r.template, r.body) for r in ROUTES if r.method is method and not r.alias),
            key=lambda r: r[1],
        )
        body = "*" if verb == "POST" else ""
        assert sent == sorted([(verb, template, body), (verb, "/{tenant}" + template, body)]), method.name
        tenant_route = next(r for r in ROUTES if r.method is method and r.template.startswith("/{tenant}/"))
        assert tenant_route.variables[0] == "tenant"
        assert all(r.streaming == method.server_streaming for r in ROUTES if r.method is method)
    aliases = sorted((r.method.name, r.verb, r.template) for r in ROUTES if r.alias)
    assert aliases == [
        ("SubscribeToTask", "POST", "/tasks/{id=*}:subscribe"),
        ("SubscribeToTask", "POST", "/{tenant}/tasks/{id=*}:subscribe"),
    ]


def test_a_method_without_an_http_rule_is_refused_by_name() -> None:
    service = PROBE.services_by_name["NoRuleService"]
    with pytest.raises(RouteError, match=r"probe\.v1\.NoRuleService\.Unruled has no google\.api\.http rule"):
        compile_routes(service)


@pytest.mark.parametrize(
    ("service", "said"),
    [
        ("BadTemplateService", "unsupported variable pattern 'things/[*][*]'"),
        ("BadVariableService", "'small' is not a string field"),
        ("BadBodyService", "body 'inners' is not supported"),
        ("BadPatternService", "pattern 'custom' is not supported"),
    ],
)
def test_rules_the_router_cannot_serve_are_refused(service: str, said: str) -> None:
    with pytest.raises(RouteError, match=said):
        compile_routes(PROBE.services_by_name[service])


@pytest.mark.parametrize(
    ("template", "said"),
    [
        ("/tasks:", "unsupported verb ''"),  # was read as /tasks
        ("/tasks:a:b", "unsupported segment 'tasks:a'"),  # a literal with a colon
        ("/a:b/{id}", "unsupported segment 'a:b'"),
        ("/ta%73ks", "unsupported segment 'ta%73ks'"),  # a literal spelled with an escape
        ("/{id}/{id}", "variable 'id' bound twice"),
        ("/{id}\n", "unsupported variable"),
        ("/tasks:{v}", "unsupported segment 'tasks:{v}'"),
        ("/", "unsupported segment ''"),
    ],
)
def test_templates_the_router_cannot_read_exactly_are_refused(template: str, said: str) -> None:
    # Found by tests/test_properties.py (test_a_template_is_read_exactly_or_refused).
    with pytest.raises(RouteError, match=re.escape(said)):
        _parse_template(template)


def test_the_v03_rules_compile_with_patterns_and_a_body_field() -> None:
    # a2a.v1 (v0.3) writes resource names: {name=tasks/*} binds "tasks/<segment>".
    from a2a_grpc.v03 import V03_SERVICE
    from a2a_grpc.v03 import types as v03

    router = Router(compile_routes(V03_SERVICE))
    route, bound = router.match("GET", "/v1/tasks/t%2F1:subscribe")
    assert route is not None
    assert (route.method.name, bound) == ("TaskSubscription", {"name": "tasks/t/1"})
    route, bound = router.match("DELETE", "/v1/tasks/t1/pushNotificationConfigs/c1")
    assert route is not None
    assert bound == {"name": "tasks/t1/pushNotificationConfigs/c1"}
    route, bound = router.match("POST", "/v1/tasks/t1/pushNotificationConfigs")
    assert route is not None
    assert (route.body, bound) == ("config", {"parent": "tasks/t1/pushNotificationConfigs"})
    assert router.match("GET", "/v1/tasks") == (None, [])
    target = router.target("GetTask", v03.GetTaskRequest(name="tasks/a:b"), {"name": "tasks/a:b"})
    assert target.path == "/v1/tasks/a%3Ab"
    with pytest.raises(errors.InvalidParamsError, match="does not have the form tasks/"):
        router.target("GetTask", v03.GetTaskRequest(name="jobs/x"), {"name": "jobs/x"})
    with pytest.raises(errors.InvalidParamsError, match="cannot be sent as a URL path segment"):
        router.target("GetTask", v03.GetTaskRequest(name="tasks/.."), {"name": "tasks/.."})


def test_a_well_formed_foreign_service_compiles() -> None:
    routes = compile_routes(PROBE.services_by_name["ProbeService"])
    assert [(r.method.name, r.verb, r.template) for r in routes] == [
        ("GetProbe", "GET", "/probes/{id=*}"),
        ("GetProbe", "GET", "/{tenant}/probes/{id=*}"),
        ("ListProbes", "GET", "/probes"),
        ("ListProbes", "GET", "/{tenant}/probes"),
        ("PokeProbe", "POST", "/probes/{id}:poke"),
        ("DropProbe", "DELETE", "/probes/{id}"),
    ]
    poke = routes[4]
    assert (poke.segments, poke.variables, poke.custom_verb, poke.body) == (
        ("probes", None),
        ("id",),
        "poke",
        "*",
    )


# -- matching -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("verb", "path", "method", "bound"),
    [
        ("POST", "/message:send", "SendMessage", {}),
        ("POST", "/acme/message:send", "SendMessage", {"tenant": "acme"}),
        ("POST", "/message:stream", "SendStreamingMessage", {}),
        ("GET", "/tasks", "ListTasks", {}),
        ("GET", "/acme/tasks", "ListTasks", {"tenant": "acme"}),
        ("GET", "/tasks/t1", "GetTask", {"id": "t1"}),
        # /tasks/{id} and /{tenant}/tasks both fit: the later literal wins (the end of a path
        # names the operation); GetTask of a task named "tasks" is sent with the name encoded.
        ("GET", "/tasks/tasks", "ListTasks", {"tenant": "tasks"}),
        ("GET", "/tasks/%74asks", "GetTask", {"id": "tasks"}),
        ("GET", "/tasks/extendedAgentCard", "GetExtendedAgentCard", {"tenant": "tasks"}),
        ("GET", "/tasks/extendedAgent%43ard", "GetTask", {"id": "extendedAgentCard"}),
        ("GET", "/%74asks/tasks", "ListTasks", {"tenant": "tasks"}),
        ("GET", "/acme/tasks/t1", "GetTask", {"tenant": "acme", "id": "t1"}),
        ("POST", "/tasks/t1:cancel", "CancelTask", {"id": "t1"}),
        ("GET", "/tasks/t1:subscribe", "SubscribeToTask", {"id": "t1"}),
        ("POST", "/tasks/t1:subscribe", "SubscribeToTask", {"id": "t1"}),
        ("POST", "/acme/tasks/t1:subscribe", "SubscribeToTask", {"tenant": "acme", "id": "t1"}),
        ("POST", "/tasks/t1/pushNotificationConfigs", "CreateTaskPushNotificationConfig", {"task_id": "t1"}),
        ("GET", "/tasks/t1/pushNotificationConfigs", "ListTaskPushNotificationConfigs", {"task_id": "t1"}),
        # .../pushNotificationConfigs beats /{tenant}/tasks/{id}: its last segment is a literal.
        (
            "GET",
            "/tasks/tasks/pushNotificationConfigs",
            "ListTaskPushNotificationConfigs",
            {"task_id": "tasks"},
        ),
        (
            "GET",
            "/tasks/t1/pushNotificationConfigs/c1",
            "GetTaskPushNotificationConfig",
            {"task_id": "t1", "id": "c1"},
        ),
        (
            "DELETE",
            "/acme/tasks/t1/pushNotificationConfigs/c1",
            "DeleteTaskPushNotificationConfig",
            {"tenant": "acme", "task_id": "t1", "id": "c1"},
        ),
        ("GET", "/extendedAgentCard", "GetExtendedAgentCard", {}),
        ("GET", "/acme/extendedAgentCard", "GetExtendedAgentCard", {"tenant": "acme"}),
        (
            "GET",
            "/tasks/tasks/pushNotificationConfigs/pushNotificationConfigs",
            "ListTaskPushNotificationConfigs",
            {"tenant": "tasks", "task_id": "pushNotificationConfigs"},
        ),
        ("POST", "/tasks/message:send", "SendMessage", {"tenant": "tasks"}),
        ("POST", "/message/message:send", "SendMessage", {"tenant": "message"}),
        # A route without a custom verb binds the whole last segment, colons included; one with a
        # custom verb wins where its verb ends the path.
        ("GET", "/tasks/urn:task:1", "GetTask", {"id": "urn:task:1"}),
        ("GET", "/tasks/t1:cancel", "GetTask", {"id": "t1:cancel"}),
        ("GET", "/tasks/a:b:subscribe", "SubscribeToTask", {"id": "a:b"}),
        ("POST", "/tasks/a:b:cancel", "CancelTask", {"id": "a:b"}),
        ("GET", "/tasks/message:send", "GetTask", {"id": "message:send"}),
        # Path variables are percent-decoded once, after splitting on "/" and ":".
        ("GET", "/tasks/a%2Fb", "GetTask", {"id": "a/b"}),
        ("POST", "/tasks/a%3Ab:cancel", "CancelTask", {"id": "a:b"}),
        ("GET", "/tasks/50%2541", "GetTask", {"id": "50%41"}),
        ("GET", "/tasks/%E2%9C%93%20x", "GetTask", {"id": "\u2713 x"}),
        ("GET", "/my%20org/tasks", "ListTasks", {"tenant": "my org"}),
    ],
)
def test_requests_find_their_route(verb: str, path: str, method: str, bound: dict[str, str]) -> None:
    route, found = ROUTER.match(verb, path)
    assert route is not None, found
    assert (route.method.name, found) == (method, bound)


@pytest.mark.parametrize(
    "path",
    [
        "/nope",
        "/tasks/a/b/c/d",
        "/message:explode",
        "/tasks/x/y:explode",
        "/tasks/",
        "//tasks",
        "/message",
        "/message:send/x",
        "/",
    ],
)
def test_unknown_paths_have_no_route_and_no_verbs(path: str) -> None:
    assert ROUTER.match("GET", path) == (None, [])
    assert ROUTER.match("POST", path) == (None, [])


@pytest.mark.parametrize(
    ("verb", "path", "allowed"),
    [
        ("DELETE", "/tasks/t1", ["GET"]),
        ("GET", "/message:send", ["POST"]),
        ("PUT", "/acme/message:stream", ["POST"]),
        ("DELETE", "/tasks/t1:cancel", ["GET", "POST"]),
        ("POST", "/tasks/t1:explode", ["GET"]),
        ("PATCH", "/tasks/t1:subscribe", ["GET", "POST"]),
        ("PUT", "/tasks/t1/pushNotificationConfigs/c1", ["DELETE", "GET"]),
        ("DELETE", "/tasks/t1/pushNotificationConfigs", ["GET", "POST"]),
        ("POST", "/tasks", ["GET"]),
    ],
)
def test_a_known_path_with_another_verb_lists_the_allowed_verbs(
    verb: str, path: str, allowed: list[str]
) -> None:
    assert ROUTER.match(verb, path) == (None, allowed)


def test_for_method_picks_the_binding_by_tenant_and_never_an_alias() -> None:
    for method in types.A2A_SERVICE.methods:
        plain = ROUTER.for_method(method.name)
        tenanted = ROUTER.for_method(method.name, tenant="acme")
        assert (plain.verb, plain.template) == EXPECTED[method.name]
        assert (tenanted.verb, tenanted.template) == (plain.verb, "/{tenant}" + plain.template)
    with pytest.raises(RouteError):
        ROUTER.for_method("NoSuchMethod")


# -- query parameters (section 11.5) --------------------------------------------------------------


def from_query(method: MethodDescriptor, query: str) -> Message:
    """The request a URL query stands for: query_to_json, then the codec (as the bridge does it)."""
    members = query_to_json(method, parse_qsl(query, keep_blank_values=True))
    return transcoding.decode(members, request_class(method))


def list_request(query: str) -> types.ListTasksRequest:
    request = from_query(LIST_TASKS, query)
    assert isinstance(request, types.ListTasksRequest)
    return request


def refused(method: MethodDescriptor, query: str) -> list[str]:
    """The fields named by the InvalidParamsError that ``query`` gets (decoding included)."""
    with pytest.raises(errors.InvalidParamsError) as caught:
        from_query(method, query)
    return [v.field for v in caught.value.field_violations]


def test_query_parameters_in_camel_case_and_snake_case() -> None:
    expected = types.ListTasksRequest(
        context_id="c-1", page_size=5, page_token="tok", history_length=0, include_artifacts=True
    )
    expected.status_timestamp_after.FromJsonString("2025-01-02T03:04:05Z")
    camel = "contextId=c-1&pageSize=5&pageToken=tok&historyLength=0&includeArtifacts=true"
    snake = "context_id=c-1&page_size=5&page_token=tok&history_length=0&include_artifacts=true"
    after = "&statusTimestampAfter=2025-01-02T03%3A04%3A05Z"
    assert list_request(camel + after) == expected
    assert list_request(snake + after.replace("statusTimestampAfter", "status_timestamp_after")) == expected
    assert list_request("includeArtifacts=false").HasField("include_artifacts")


@pytest.mark.parametrize(
    ("text", "state"),
    [
        ("TASK_STATE_WORKING", types.TASK_STATE_WORKING),
        ("working", types.TASK_STATE_WORKING),
        ("WORKING", types.TASK_STATE_WORKING),
        ("input_required", types.TASK_STATE_INPUT_REQUIRED),
        ("TASK_STATE_AUTH_REQUIRED", types.TASK_STATE_AUTH_REQUIRED),
        ("3", types.TASK_STATE_COMPLETED),
    ],
)
def test_enum_query_parameters_by_full_and_short_name(text: str, state: int) -> None:
    assert list_request(f"status={text}").status == state


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ("status=sleepy", ["status"]),
        ("includeArtifacts=yes", ["includeArtifacts"]),
        ("include_artifacts=True", ["include_artifacts"]),
        ("includeArtifacts=1", ["includeArtifacts"]),
        ("pageSize=ten", ["pageSize"]),
        ("pageSize=1.5", ["pageSize"]),
        ("historyLength=99999999999", ["historyLength"]),
        ("statusTimestampAfter=yesterday", ["statusTimestampAfter"]),
        ("colour=red&pageSize=ten", ["pageSize"]),
        ("pageSize=1&pageSize=2", ["pageSize"]),
        ("pageSize=1&page_size=2", ["page_size"]),
    ],
    ids=[
        "unknown-enum",
        "bool-yes",
        "bool-capitalised",
        "bool-digit",
        "number-word",
        "number-fraction",
        "number-range",
        "timestamp",
        "unknown-parameter-beside-a-bad-one",
        "duplicate",
        "duplicate-both-spellings",
    ],
)
def test_bad_query_parameters_are_refused_by_name(query: str, fields: list[str]) -> None:
    assert refused(LIST_TASKS, query) == fields


def test_unknown_query_parameters_are_ignored() -> None:
    # Spec 5.7 (unrecognized fields are ignored), applied to the query a GET route reads.
    assert list_request("colour=red&pageSize=5&debug") == types.ListTasksRequest(page_size=5)
    assert query_to_json(LIST_TASKS, [("x" * 100_000, "y")]) == {}


def test_repeated_query_parameters_by_repetition_and_commas() -> None:
    members = query_to_json(
        PROBE_LIST,
        parse_qsl("tags=a&tags=b,c&colors=deep_red,COLOR_BLUE&colors=1&bigCount=9007199254740993"),
    )
    assert members == {
        "tags": ["a", "b", "c"],
        "colors": ["COLOR_DEEP_RED", "COLOR_BLUE", "1"],
        "bigCount": "9007199254740993",
    }
    probe = transcoding.decode(members, request_class(PROBE_LIST))
    assert list(probe.tags) == ["a", "b", "c"]  # type: ignore[attr-defined]
    assert list(probe.colors) == [1, 2, 1]  # type: ignore[attr-defined]
    assert probe.big_count == 2**53 + 1  # type: ignore[attr-defined]


def test_nested_messages_cannot_be_query_parameters_but_scalar_well_known_types_can() -> None:
    assert refused(PROBE_LIST, "inner=x") == ["inner"]
    assert refused(PROBE_LIST, "inners=x") == ["inners"]
    assert refused(PROBE_LIST, "extra=x") == ["extra"]
    members = query_to_json(
        PROBE_LIST, [("after", "2025-01-02T03:04:05Z"), ("flag", "true"), ("score", "2.5")]
    )
    probe = transcoding.decode(members, request_class(PROBE_LIST))
    assert probe.after.seconds == 1735787045  # type: ignore[attr-defined]
    assert (probe.flag, probe.score) == (True, 2.5)  # type: ignore[attr-defined]


# -- expand: the reverse direction ------------------------------------------------------------------

ODD = "a/b c%d:e\u2713"
"""A value with every character a path segment has to escape."""


def full_request(name: str, tenant: str) -> Message:
    """A request of RPC ``name`` with its path fields and some query/body fields set."""
    send = types.SendMessageRequest(tenant=tenant)
    send.message.message_id, send.message.role = "m-1", types.ROLE_USER
    send.message.parts.add(text="hi")
    send.configuration.history_length = 0
    send.metadata.update({"k": [1, "two"]})
    listed = types.ListTasksRequest(
        tenant=tenant,
        context_id=ODD,
        status=types.TASK_STATE_WORKING,
        page_size=7,
        page_token="p&q=r",
        include_artifacts=False,
    )
    listed.status_timestamp_after.FromJsonString("2025-01-02T03:04:05.500Z")
    cancel = types.CancelTaskRequest(tenant=tenant, id=ODD)
    cancel.metadata.update({"why": "test"})
    config = types.TaskPushNotificationConfig(tenant=tenant, task_id=ODD, id="c/1", url="https://x.invalid/h")
    config.authentication.scheme = "Bearer"
    requests: dict[str, Message] = {
        "SendMessage": send,
        "SendStreamingMessage": send,
        "GetTask": types.GetTaskRequest(tenant=tenant, id=ODD, history_length=3),
        "ListTasks": listed,
        "CancelTask": cancel,
        "SubscribeToTask": types.SubscribeToTaskRequest(tenant=tenant, id=ODD),
        "CreateTaskPushNotificationConfig": config,
        "GetTaskPushNotificationConfig": types.GetTaskPushNotificationConfigRequest(
            tenant=tenant, task_id=ODD, id="c/1"
        ),
        "ListTaskPushNotificationConfigs": types.ListTaskPushNotificationConfigsRequest(
            tenant=tenant, task_id=ODD, page_size=2, page_token="x"
        ),
        "GetExtendedAgentCard": types.GetExtendedAgentCardRequest(tenant=tenant),
        "DeleteTaskPushNotificationConfig": types.DeleteTaskPushNotificationConfigRequest(
            tenant=tenant, task_id=ODD, id="c:1"
        ),
    }
    return requests[name]


@pytest.mark.parametrize("tenant", ["", "my org/\u00e9"], ids=["plain", "tenant"])
@pytest.mark.parametrize("name", list(EXPECTED))
def test_expand_then_match_gives_back_the_request(name: str, tenant: str) -> None:
    request = full_request(name, tenant)
    route = ROUTER.for_method(name, tenant)
    path, body, query = route.expand(request, transcoding.encode(request))
    assert "?" not in path
    matched, bound = ROUTER.match(route.verb, path)
    assert matched is route, (path, matched)
    assert isinstance(bound, dict)
    members: dict[str, Any] = dict(body)
    if route.body == "*":
        assert query == ""
    else:
        assert body == {}
        members = query_to_json(route.method, parse_qsl(query, keep_blank_values=True))
    for field_name, value in bound.items():
        assert getattr(request, field_name) == value
        members[route.method.input_type.fields_by_name[field_name].json_name] = value
    assert transcoding.decode(members, type(request)) == request


def test_expand_refuses_an_empty_path_variable() -> None:
    route: Route = ROUTER.for_method("GetTask")
    with pytest.raises(errors.InvalidParamsError) as caught:
        route.expand(types.GetTaskRequest(), {})
    assert [v.field for v in caught.value.field_violations] == ["id"]


# -- one reading per path: values spelled like literals ---------------------------------------------

LITERAL_VALUES = ["tasks", "message", "extendedAgentCard", "pushNotificationConfigs"]
"""Every literal segment of the A2A routes: as a tenant or an id each used to read as another route."""
TRICKY_VALUES = [*LITERAL_VALUES, "message:send", "tasks:cancel", "card", "%74asks", "Tasks", "t"]


def test_the_literals_are_the_routes_literal_segments() -> None:
    assert ROUTER.literals == frozenset(LITERAL_VALUES)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_every_tenant_and_id_reads_back_as_the_same_operation(name: str) -> None:
    for tenant, value in itertools.product(["", *TRICKY_VALUES], TRICKY_VALUES):
        request = request_class(types.A2A_SERVICE.methods_by_name[name])(tenant=tenant)
        for field in ROUTER.for_method(name, tenant).variables:
            if field != "tenant":
                setattr(request, field, value)
        target = ROUTER.target(name, request, transcoding.encode(request))
        route, bound = ROUTER.match(target.route.verb, target.path)
        assert route is target.route, (target.path, route)
        assert bound == {f: getattr(request, f) for f in route.variables}, target.path


@pytest.mark.parametrize(
    ("name", "fields", "path"),
    [
        ("ListTasks", {"tenant": "tasks"}, "/%74asks/tasks"),
        ("GetTask", {"id": "tasks"}, "/tasks/%74asks"),
        ("GetExtendedAgentCard", {"tenant": "tasks"}, "/%74asks/extendedAgentCard"),
        ("GetTask", {"id": "extendedAgentCard"}, "/tasks/%65xtendedAgentCard"),
        ("SendMessage", {"tenant": "message:send"}, "/message%3Asend/message:send"),
        ("SendMessage", {"tenant": "message"}, "/%6Dessage/message:send"),
        ("CancelTask", {"id": "x:cancel"}, "/tasks/x%3Acancel:cancel"),
        ("GetTask", {"id": "urn:t:1", "tenant": "acme"}, "/acme/tasks/urn%3At%3A1"),
        (
            "ListTaskPushNotificationConfigs",
            {"tenant": "tasks", "task_id": "pushNotificationConfigs"},
            "/%74asks/tasks/%70ushNotificationConfigs/pushNotificationConfigs",
        ),
        ("GetTask", {"id": "Tasks"}, "/tasks/Tasks"),  # literals are case-sensitive: nothing to encode
    ],
)
def test_the_paths_sent_for_values_spelled_like_literals(
    name: str, fields: dict[str, str], path: str
) -> None:
    request = request_class(types.A2A_SERVICE.methods_by_name[name])(**fields)
    assert ROUTER.target(name, request, transcoding.encode(request)).path == path


def test_a_path_variable_that_is_not_utf8_is_refused_by_name() -> None:
    with pytest.raises(errors.InvalidParamsError) as caught:
        ROUTER.match("GET", "/acme%FF/tasks/t1")
    assert [v.field for v in caught.value.field_violations] == ["tenant"]
    # A raw non-ASCII byte (the request target's bytes read as latin-1) is decoded as UTF-8 too.
    get_task = ROUTER.for_method("GetTask")
    assert ROUTER.match("GET", "/tasks/caf\u00c3\u00a9") == (get_task, {"id": "caf\u00e9"})


def test_two_routes_that_read_every_path_alike_are_refused() -> None:
    get = ROUTER.for_method("GetTask")
    twin = dataclasses.replace(get, method=types.A2A_SERVICE.methods_by_name["SubscribeToTask"])
    with pytest.raises(RouteError, match=r"GET /tasks/\{id=\*\} .* read every path alike"):
        Router([get, twin])
