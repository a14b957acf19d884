"""ProtoJSON transcoding: golden files pin the encoding; decoding accepts what ProtoJSON allows and
refuses the rest with an error that names the field.

Regenerate the goldens after a deliberate change with ``UPDATE_GOLDEN=1 pytest tests/test_transcoding.py``
(the run that writes them fails, so a regeneration is never mistaken for a pass), then review the diff.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from a2a_grpc import errors, types
from a2a_grpc.bridge import transcoding
from a2a_grpc.reference_agent import reference_card
from tests.bridge_http_peers import probe_file

M = TypeVar("M", bound=Message)
GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
RAW = b"\xfb\xff\xbf\x00"
"""Bytes whose standard base64 (``+/+/AA==``) and URL-safe base64 (``-_-_AA==``) differ."""
PROBE = message_factory.GetMessageClass(probe_file().message_types_by_name["Probe"])


def with_meta(message: M, value: dict[str, Any], field: str = "metadata") -> M:
    """``message`` with the Struct ``field`` set (our classes live in a private pool: set in place)."""
    getattr(message, field).update(value)
    return message


# -- the golden messages --------------------------------------------------------------------------


def agent_message() -> types.Message:
    return types.Message(
        message_id="m-agent",
        context_id="ctx-1",
        task_id="task-1",
        role=types.ROLE_AGENT,
        parts=[types.Part(text="working on it")],
    )


def user_message() -> types.Message:
    data = types.Part(media_type="application/json")
    data.data.struct_value.update({"query": "weather", "days": [1, 2], "units": None})
    message = types.Message(
        message_id="m-user",
        context_id="ctx-1",
        task_id="task-1",
        role=types.ROLE_USER,
        parts=[types.Part(text="What is the weather?"), data],
        extensions=["https://example.invalid/ext/geo/v1"],
        reference_task_ids=["task-0"],
    )
    message.metadata.update({"client": "golden"})
    return message


def full_task() -> types.Task:
    data = types.Part()
    data.data.list_value.extend([1, "two", True, None, {"three": 3.5}])  # type: ignore[list-item]
    artifact = types.Artifact(
        artifact_id="art-1",
        name="result",
        description="every kind of part",
        parts=[
            with_meta(types.Part(text="hello"), {"lang": "en"}),
            types.Part(raw=RAW, media_type="application/octet-stream", filename="blob.bin"),
            types.Part(url="https://example.invalid/f.png", media_type="image/png", filename="f.png"),
            data,
        ],
        extensions=["https://example.invalid/ext/cite/v1"],
    )
    artifact.metadata.update({"chunks": 4})
    task = types.Task(id="task-1", context_id="ctx-1", history=[user_message(), agent_message()])
    task.artifacts.append(artifact)
    task.status.state = types.TASK_STATE_WORKING
    task.status.message.CopyFrom(agent_message())
    task.status.timestamp.FromJsonString("2025-10-28T10:30:00.123Z")
    task.metadata.update(
        {
            "priority": "high",
            "attempt": 2,
            "ratio": 0.25,
            "tags": ["a", "b"],
            "nested": {"deep": {"flag": True, "nothing": None, "list": [{"x": 1}]}},
        }
    )
    return task


def small_task() -> types.Task:
    task = types.Task(id="task-2", context_id="ctx-2")
    task.status.state = types.TASK_STATE_SUBMITTED
    task.status.timestamp.FromJsonString("2025-01-01T00:00:00Z")
    return task


def status_update() -> types.StreamResponse:
    event = types.StreamResponse()
    update = event.status_update
    update.task_id, update.context_id = "task-1", "ctx-1"
    update.status.state = types.TASK_STATE_INPUT_REQUIRED
    update.status.message.CopyFrom(agent_message())
    update.status.timestamp.FromJsonString("2025-10-28T10:30:01.500Z")
    update.metadata.update({"step": 3})
    return event


def artifact_update() -> types.StreamResponse:
    event = types.StreamResponse()
    update = event.artifact_update
    update.task_id, update.context_id = "task-1", "ctx-1"
    update.artifact.artifact_id = "art-1"
    update.artifact.parts.add(raw=RAW, media_type="application/octet-stream")
    update.append, update.last_chunk = True, True
    return event


def push_config() -> types.TaskPushNotificationConfig:
    config = types.TaskPushNotificationConfig(
        tenant="acme", id="cfg-1", task_id="task-1", url="https://client.invalid/hook", token="tok-1"
    )
    config.authentication.scheme, config.authentication.credentials = "Bearer", "secret"
    return config


def send_request() -> types.SendMessageRequest:
    request = types.SendMessageRequest(tenant="acme", message=user_message())
    request.metadata.update({"trace": "t"})
    config = request.configuration
    config.accepted_output_modes.extend(["text/plain", "application/json"])
    config.history_length = 0  # explicitly set: present in JSON although it is the default value
    config.return_immediately = True
    config.task_push_notification_config.CopyFrom(push_config())
    return request


def agent_card() -> types.AgentCard:
    card = reference_card()
    card.supported_interfaces.add(url="agent.invalid:443", protocol_binding="GRPC", protocol_version="1.0")
    card.supported_interfaces.add(
        url="https://agent.invalid/", protocol_binding="JSONRPC", protocol_version="1.0"
    )
    card.supported_interfaces.add(
        url="https://agent.invalid", protocol_binding="HTTP+JSON", protocol_version="1.0", tenant="acme"
    )
    card.documentation_url = "https://agent.invalid/docs"
    card.icon_url = "https://agent.invalid/icon.png"
    extension = card.capabilities.extensions.add(
        uri="https://example.invalid/ext/geo/v1", description="geo", required=True
    )
    extension.params.update({"v": 1})
    schemes = card.security_schemes
    schemes["apiKey"].api_key_security_scheme.location = "header"
    schemes["apiKey"].api_key_security_scheme.name = "X-API-Key"
    schemes["bearer"].http_auth_security_scheme.scheme = "Bearer"
    schemes["bearer"].http_auth_security_scheme.bearer_format = "JWT"
    flow = schemes["oauth"].oauth2_security_scheme.flows.authorization_code
    flow.authorization_url, flow.token_url = "https://auth.invalid/authorize", "https://auth.invalid/token"
    flow.scopes["read"] = "read tasks"
    flow.pkce_required = True
    schemes[
        "oidc"
    ].open_id_connect_security_scheme.open_id_connect_url = (
        "https://auth.invalid/.well-known/openid-configuration"
    )
    schemes["mtls"].mtls_security_scheme.description = "client certificates"
    card.security_requirements.add().schemes["oauth"].list.append("read")
    card.skills[0].security_requirements.add().schemes["bearer"].list.append("tasks")
    signature = card.signatures.add(protected="eyJhbGciOiJFUzI1NiJ9", signature="c2ln")
    signature.header.update({"kid": "key-1"})
    return card


def empty_list() -> types.ListTasksResponse:
    return types.ListTasksResponse()


def one_page() -> types.ListTasksResponse:
    return types.ListTasksResponse(tasks=[small_task()], next_page_token="next", page_size=1, total_size=3)


GOLDENS: dict[str, Callable[[], Message]] = {
    "task": full_task,
    "stream_task": lambda: types.StreamResponse(task=small_task()),
    "stream_message": lambda: types.StreamResponse(message=agent_message()),
    "stream_status_update": status_update,
    "stream_artifact_update": artifact_update,
    "send_message_request": send_request,
    "agent_card": agent_card,
    "list_tasks_response_empty": empty_list,
    "list_tasks_response": one_page,
    "task_push_notification_config": push_config,
}


def golden_text(obj: Any) -> str:
    # Keys sorted: the member order of a Struct or a map is not the same from one process to the
    # next (protobuf's map iteration order), and JSON objects are unordered anyway.
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# -- goldens --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(GOLDENS))
def test_encoding_matches_the_golden_file(name: str) -> None:
    message = GOLDENS[name]()
    encoded = json.loads(transcoding.to_json(message))  # what goes on the wire
    assert encoded == transcoding.encode(message)
    path = GOLDEN / f"{name}.json"
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(golden_text(encoded), encoding="utf-8")
        pytest.fail(f"rewrote {path.name} (UPDATE_GOLDEN=1): review the diff and run again without it")
    assert path.exists(), f"no golden file {path.name}: run UPDATE_GOLDEN=1 pytest {__file__}"
    assert golden_text(encoded) == path.read_text(encoding="utf-8"), (
        f"{name}: encoding drifted from the golden"
    )


@pytest.mark.parametrize("name", list(GOLDENS))
def test_the_golden_decodes_back_to_the_message(name: str) -> None:
    message = GOLDENS[name]()
    golden = json.loads((GOLDEN / f"{name}.json").read_text(encoding="utf-8"))
    assert transcoding.decode(golden, type(message)) == message
    assert transcoding.from_json(transcoding.to_json(message), type(message)) == message


def snake_case(obj: Any, descriptor: Any) -> Any:
    """``obj`` (ProtoJSON of ``descriptor``) with every field member renamed to its proto name."""
    if descriptor.full_name.startswith("google.protobuf."):
        return obj  # Struct, Value, Timestamp: free-form JSON, not field names
    out: dict[str, Any] = {}
    for key, value in obj.items():
        field = next(f for f in descriptor.fields if key in (f.json_name, f.name))
        sub = field.message_type
        if sub is not None and sub.GetOptions().map_entry:
            value_type = sub.fields_by_name["value"].message_type
            if value_type is not None:
                value = {k: snake_case(v, value_type) for k, v in value.items()}
        elif sub is not None:
            value = [snake_case(v, sub) for v in value] if field.is_repeated else snake_case(value, sub)
        out[field.name] = value
    return out


@pytest.mark.parametrize("name", list(GOLDENS))
def test_snake_case_member_names_decode_too(name: str) -> None:
    message = GOLDENS[name]()
    renamed = snake_case(transcoding.encode(message), message.DESCRIPTOR)
    assert transcoding.decode(renamed, type(message)) == message


def test_member_names_out_are_camel_case() -> None:
    snake = {
        f.name
        for m in types.DESCRIPTOR.message_types_by_name.values()
        for f in _all_fields(m)
        if "_" in f.name
    }
    assert {"context_id", "message_id", "supported_interfaces", "last_chunk"} <= snake
    for name in GOLDENS:
        text = (GOLDEN / f"{name}.json").read_text(encoding="utf-8")
        assert not [s for s in snake if f'"{s}":' in text], name
    task = json.loads((GOLDEN / "task.json").read_text(encoding="utf-8"))
    assert {"contextId", "status", "history", "artifacts", "metadata"} <= task.keys()
    assert task["artifacts"][0]["parts"][1]["mediaType"] == "application/octet-stream"


def _all_fields(descriptor: Descriptor) -> list[FieldDescriptor]:
    fields = list(descriptor.fields)
    for nested in descriptor.nested_types:
        fields += _all_fields(nested)
    return fields


# -- value conventions ----------------------------------------------------------------------------


def test_enums_out_by_name_and_in_by_name_or_number() -> None:
    task = transcoding.encode(full_task())
    assert task["status"]["state"] == "TASK_STATE_WORKING"
    assert task["history"][0]["role"] == "ROLE_USER"
    by_number = transcoding.decode({"status": {"state": 3}, "history": [{"role": 2}]}, types.Task)
    assert by_number.status.state == types.TASK_STATE_COMPLETED
    assert by_number.history[0].role == types.ROLE_AGENT
    by_name = transcoding.decode({"status": {"state": "TASK_STATE_COMPLETED"}}, types.Task)
    assert by_name == transcoding.decode({"status": {"state": "3"}}, types.Task)


def test_int64_goes_out_as_a_string_and_comes_in_as_string_or_number() -> None:
    big = 2**53 + 1  # not representable as a double: a JSON number would lose it
    encoded = transcoding.encode(PROBE(big_count=big, huge=2**64 - 1, small=7))
    assert encoded["bigCount"] == str(big)
    assert encoded["huge"] == str(2**64 - 1)
    assert encoded["small"] == 7  # int32 stays a number
    assert transcoding.decode({"bigCount": str(big)}, PROBE).big_count == big  # type: ignore[attr-defined]
    assert transcoding.decode({"bigCount": 42}, PROBE).big_count == 42  # type: ignore[attr-defined]
    assert transcoding.decode({"big_count": "-5"}, PROBE).big_count == -5  # type: ignore[attr-defined]


def test_required_members_of_a_response_are_present_even_when_default() -> None:
    assert transcoding.encode(types.ListTasksResponse()) == {
        "tasks": [],
        "nextPageToken": "",
        "pageSize": 0,
        "totalSize": 0,
    }
    assert transcoding.encode(PROBE())["mustCount"] == "0"  # a REQUIRED int64 defaults to "0", a string
    assert "bigCount" not in transcoding.encode(PROBE())  # not REQUIRED: omitted


def test_bytes_go_out_as_standard_base64_and_come_in_either_way() -> None:
    part = transcoding.encode(types.Part(raw=RAW))
    assert part == {"raw": "+/+/AA=="}
    for text in ("+/+/AA==", "-_-_AA==", "-_-_AA", "+/+/AA"):
        assert transcoding.decode({"raw": text}, types.Part).raw == RAW, text


def test_invalid_base64_is_refused_not_decoded_into_other_bytes() -> None:
    # A typo must not silently become different (here: empty) bytes.
    with pytest.raises(errors.InvalidParamsError) as caught:
        transcoding.decode({"parts": [{"raw": "!!!!"}]}, types.Message)
    assert [v.field for v in caught.value.field_violations] == ["parts[0].raw"]


def test_struct_and_value_are_plain_json() -> None:
    task = transcoding.encode(full_task())
    assert task["metadata"] == {
        "priority": "high",
        "attempt": 2,
        "ratio": 0.25,
        "tags": ["a", "b"],
        "nested": {"deep": {"flag": True, "nothing": None, "list": [{"x": 1}]}},
    }
    assert task["artifacts"][0]["parts"][3] == {"data": [1, "two", True, None, {"three": 3.5}]}
    assert task["status"]["timestamp"] == "2025-10-28T10:30:00.123Z"
    value = transcoding.decode({"parts": [{"data": "just a string"}]}, types.Message).parts[0].data
    assert value.string_value == "just a string"


# -- refusing bad input ---------------------------------------------------------------------------


def violations(data: object, cls: type[Message] = types.SendMessageRequest, where: str = "") -> list[str]:
    with pytest.raises(errors.InvalidParamsError) as caught:
        transcoding.decode(data, cls, where=where)
    assert caught.value.message
    return [v.field for v in caught.value.field_violations]


MESSAGE = {"messageId": "m-1", "role": "ROLE_USER", "parts": [{"text": "x"}]}


@pytest.mark.parametrize(
    ("data", "known"),
    [
        ({"mesage": {}, "message": MESSAGE}, {"message": MESSAGE}),
        (
            {"message": {**MESSAGE, "parts": [{"text": "x", "txt": "y"}]}},
            {"message": {**MESSAGE, "parts": [{"text": "x"}]}},
        ),
        (
            {"message": {**MESSAGE, "parts": [{"text": "x"}, {"text": "y", "future": {"a": [1]}}]}},
            {"message": {**MESSAGE, "parts": [{"text": "x"}, {"text": "y"}]}},
        ),
        (
            {"configuration": {"taskPushNotificationConfig": {"url": "http://h/", "uri": "x"}, "x": 1}},
            {"configuration": {"taskPushNotificationConfig": {"url": "http://h/"}}},
        ),
        ({"@type": "x", "[ext.field]": 1, "message": MESSAGE}, {"message": MESSAGE}),
        ({"metadata": {"anything": {"goes": 1}}, "extra": None}, {"metadata": {"anything": {"goes": 1}}}),
    ],
    ids=["top", "in-list", "second-in-list", "nested", "any-and-extension-markers", "struct-kept-whole"],
)
def test_an_unknown_member_is_ignored_at_any_depth(data: dict[str, Any], known: dict[str, Any]) -> None:
    # Spec 5.7: "Implementations SHOULD ignore unrecognized fields in messages."
    assert transcoding.decode(data, types.SendMessageRequest) == transcoding.decode(
        known, types.SendMessageRequest
    )


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"future": 1, "message": {"role": "ROLE_BOSS", "hint": "x"}}, "message.role"),
        ({"message": {"parts": [{"txt": "x"}, {"text": 5, "more": 1}]}}, "message.parts[1].text"),
        ({"configuration": {"x": 1, "historyLength": "many"}}, "configuration.historyLength"),
        ({"message": {"parts": [{"raw": "!!", "mediaTyp": "x"}]}}, "message.parts[0].raw"),
    ],
    ids=["bad-enum", "wrong-type-in-list", "bad-int", "bad-base64"],
)
def test_an_unknown_member_does_not_hide_a_bad_one(data: object, field: str) -> None:
    assert violations(data) == [field]


def test_json_format_lenient_mode_would_drop_unknown_enum_names() -> None:
    # Why decode trims unknown members itself instead of json_format's ignore_unknown_fields:
    # that flag also turns an unknown enum name into the zero value without a word.
    lenient = json_format.ParseDict({"role": "ROLE_BOSS"}, types.Message(), ignore_unknown_fields=True)
    assert lenient.role == types.ROLE_UNSPECIFIED
    assert violations({"role": "ROLE_BOSS", "unknown": 1}, types.Message) == ["role"]
    # Answers of an upstream agent are read leniently on purpose: a newer agent's new state.
    task = transcoding.decode(
        {"id": "t", "status": {"state": "TASK_STATE_NEW"}, "x": 1}, types.Task, lenient=True
    )
    assert task.status.state == types.TASK_STATE_UNSPECIFIED


def test_the_path_is_prefixed_with_where() -> None:
    assert violations({"message": {"parts": [{"text": 5}]}}, where="params") == [
        "params.message.parts[0].text"
    ]
    assert violations([], types.GetTaskRequest, where="params") == ["params"]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"message": {"role": "ROLE_BOSS"}}, "message.role"),
        ({"configuration": {"historyLength": "abc"}}, "configuration.historyLength"),
        ({"configuration": {"historyLength": 1.5}}, "configuration.historyLength"),
        ({"configuration": {"returnImmediately": "yes"}}, "configuration.returnImmediately"),
        ({"metadata": "x"}, "metadata"),
        ({"metadata": [1]}, "metadata"),
        ({"message": 5}, "message"),
        ({"message": "hello"}, "message"),
        ({"message": {"parts": [{"text": 5}]}}, "message.parts[0].text"),
        ({"message": {"parts": [5]}}, "message.parts[0]"),
        ({"configuration": {"acceptedOutputModes": "text/plain"}}, "configuration.acceptedOutputModes"),
        ({"message": {"parts": [{"text": "a", "raw": "AA=="}]}}, "message.parts[0]"),
    ],
    ids=[
        "enum-name",
        "int-word",
        "int-fraction",
        "bool-string",
        "struct-string",
        "struct-list",
        "message-number",
        "message-string",
        "string-number-in-list",
        "message-number-in-list",
        "repeated-string",
        "two-of-a-oneof",
    ],
)
def test_a_wrong_type_names_the_field(data: object, field: str) -> None:
    assert violations(data) == [field]


@pytest.mark.parametrize("data", [[], "x", 5, None, True, [{"id": "x"}]])
def test_a_non_object_is_invalid_params(data: object) -> None:
    assert violations(data, types.GetTaskRequest) == [""]


@pytest.mark.parametrize(
    "body",
    [b"", b"{bad", b"nul", b'{"a":1,}', b'{"a":1}{"b":2}', b"\xff\xfe", b"NaN", b"[" * 1025 + b"]" * 1025],
    ids=[
        "empty",
        "broken",
        "truncated",
        "trailing-comma",
        "two-documents",
        "not-utf8",
        "nan",
        "deeper-than-1024",
    ],
)
def test_what_is_not_json_is_a_parse_error(body: bytes) -> None:
    with pytest.raises(errors.ParseError, match="invalid JSON"):
        transcoding.loads(body)
    with pytest.raises(errors.ParseError):
        transcoding.from_json(body, types.GetTaskRequest)


def test_json_up_to_1024_levels_parses() -> None:
    assert transcoding.loads(b"[" * 1024 + b"]" * 1024)


def nested(levels: int) -> dict[str, Any]:
    value: Any = "leaf"
    for _ in range(levels):
        value = {"k": value}
    return value  # type: ignore[no-any-return]


def test_deep_struct_nesting_is_invalid_params_naming_the_field() -> None:
    assert transcoding.decode({"metadata": nested(20)}, types.SendMessageRequest).metadata["k"]
    assert violations({"metadata": nested(200)}) == ["metadata"]
    assert violations({"message": {"parts": [{"text": "x", "metadata": nested(200)}]}})[0].startswith(
        "message.parts"
    )


# -- regressions found by the properties (tests/test_properties.py) --------------------------------


@pytest.mark.parametrize("number", [2**40, 2**32 + 3, -(2**31) - 1, 1.5, 0.5])
def test_an_enum_number_that_is_not_a_whole_int32_is_refused(number: float) -> None:
    # json_format took these and changed them: 2^40 became 0 (no filter), 2^32+3 became 3, 1.5 became 1.
    with pytest.raises(errors.InvalidParamsError) as caught:
        transcoding.decode({"status": number}, types.ListTasksRequest)
    assert [v.field for v in caught.value.field_violations] == ["status"]
    with pytest.raises(errors.InvalidParamsError) as caught:
        transcoding.decode({"message": {"role": number}}, types.SendMessageRequest)
    assert [v.field for v in caught.value.field_violations] == ["message.role"]


def test_a_whole_enum_number_is_still_read() -> None:
    assert transcoding.decode({"status": 3.0}, types.ListTasksRequest).status == types.TASK_STATE_COMPLETED
    assert transcoding.decode({"status": 2**31 - 1}, types.ListTasksRequest).status == 2**31 - 1


def test_an_integer_beyond_a_double_in_free_form_json_is_refused_by_path() -> None:
    # Struct numbers are doubles: json_format raised a bare OverflowError for 10^400.
    with pytest.raises(errors.InvalidParamsError) as caught:
        transcoding.decode({"metadata": {"k": [1, {"z": 10**400}]}}, types.SendMessageRequest)
    assert [v.field for v in caught.value.field_violations] == ["metadata.k[1].z"]


def test_a_value_json_cannot_hold_is_a_typed_error_naming_the_field() -> None:
    # A gRPC caller can send what ProtoJSON cannot write; json_format raised SerializeToJsonError.
    request = types.ListTasksRequest()
    request.status_timestamp_after.seconds = 2**62
    with pytest.raises(errors.InvalidParamsError) as caught:
        transcoding.encode(request)
    assert [v.field for v in caught.value.field_violations] == ["statusTimestampAfter"]
    assert "253402300799" in caught.value.message
    answer = with_meta(types.Task(id="t"), {"x": float("nan")})
    with pytest.raises(errors.InvalidAgentResponseError):
        transcoding.encode(answer, fault=errors.InvalidAgentResponseError)
