"""The v0.3 JSON-RPC shapes: every object, params and result, both directions, against the
official SDK's v0.3 models (a2a-sdk 1.3 ``a2a.compat.v0_3.types``), the decisions and losses of
docs/versions.md, and hostile params."""

from __future__ import annotations

from typing import Any

import pytest
from a2a.compat.v0_3 import types as v03
from google.protobuf import empty_pb2
from google.protobuf.message import Message

from a2a_grpc import errors, types
from a2a_grpc.bridge import transcoding
from a2a_grpc.parts import data_part, to_struct
from a2a_grpc.security.limits import Limits
from a2a_grpc.security.shape import check_json_request
from a2a_grpc.service import METHODS
from a2a_grpc.v03 import _members
from a2a_grpc.v03.jsonrpc_events import (
    FINAL_STATES,
    send_result_from_v03,
    send_result_to_v03,
    stream_event_from_v03,
    stream_event_to_v03,
)
from a2a_grpc.v03.jsonrpc_methods import method_table
from a2a_grpc.v03.jsonrpc_shapes import (
    STATES,
    message_from_v03,
    message_to_v03,
    part_from_v03,
    part_to_v03,
    task_from_v03,
    task_to_v03,
)

S = types.TaskState
TABLE = method_table()


def dump(model: Any) -> Any:
    return model.model_dump(by_alias=True, exclude_none=True, mode="json")


def message(role: int = types.Role.ROLE_AGENT, text: str = "hello") -> types.Message:
    return types.Message(
        message_id="m-1",
        context_id="c-1",
        task_id="t-1",
        role=role,  # type: ignore[arg-type]
        parts=[
            types.Part(text=text, metadata=to_struct({"lang": "en"})),
            types.Part(raw=b"\x00\xffbinary", media_type="image/png", filename="a.png"),
            types.Part(url="https://example.com/r.pdf", media_type="application/pdf", filename="r.pdf"),
            types.Part(data=data_part({"city": "Paris", "n": [1, 2]}).data),
            types.Part(data=data_part([1, "two", None]).data, metadata=to_struct({"k": "v"})),
            types.Part(data=data_part("scalar").data),
        ],
        metadata=to_struct({"trace": {"id": "x"}}),
        extensions=["https://ext/1"],
        reference_task_ids=["t-0"],
    )


def task(state: int = S.TASK_STATE_COMPLETED) -> types.Task:
    status = types.TaskStatus(state=state, message=message())  # type: ignore[arg-type]
    status.timestamp.FromJsonString("2025-06-01T12:00:00.123456789Z")
    artifact = types.Artifact(
        artifact_id="a-1",
        name="report",
        description="the report",
        parts=[types.Part(text="body")],
        metadata=to_struct({"size": 3}),
        extensions=["https://ext/2"],
    )
    return types.Task(
        id="t-1",
        context_id="c-1",
        status=status,
        artifacts=[artifact],
        history=[message(types.Role.ROLE_USER, "question"), message()],
        metadata=to_struct({"owner": "me"}),
    )


# -- objects ------------------------------------------------------------------------------------


def test_a_task_crosses_both_ways_unchanged_and_the_sdk_model_accepts_it() -> None:
    original = task()
    out = task_to_v03(original)
    assert out["kind"] == "task"
    assert out["status"]["state"] == "completed"
    assert out["status"]["timestamp"] == "2025-06-01T12:00:00.123456789Z"
    model = v03.Task.model_validate(out)
    assert task_from_v03(out) == original
    assert task_from_v03(dump(model)) == original  # what the SDK dumps, we read


def test_parts_take_the_v03_forms() -> None:
    parts = [part_to_v03(p) for p in message().parts]
    assert parts[0] == {"kind": "text", "text": "hello", "metadata": {"lang": "en"}}
    assert parts[1] == {
        "kind": "file",
        "file": {"bytes": "AP9iaW5hcnk=", "mimeType": "image/png", "name": "a.png"},
    }
    assert parts[2]["file"] == {
        "uri": "https://example.com/r.pdf",
        "mimeType": "application/pdf",
        "name": "r.pdf",
    }
    assert parts[3] == {"kind": "data", "data": {"city": "Paris", "n": [1.0, 2.0]}}
    # A non-object value is wrapped and marked, as the official SDK does; its metadata is kept.
    assert parts[4] == {
        "kind": "data",
        "data": {"value": [1.0, "two", None]},
        "metadata": {"k": "v", "data_part_compat": True},
    }
    assert parts[5]["data"] == {"value": "scalar"}
    for p in parts:
        v03.Part.model_validate(p)


def test_a_message_keeps_reference_task_ids_extensions_and_role() -> None:
    for role, name in ((types.Role.ROLE_USER, "user"), (types.Role.ROLE_AGENT, "agent")):
        out = message_to_v03(message(role))
        assert out["role"] == name
        assert out["referenceTaskIds"] == ["t-0"]
        v03.Message.model_validate(out)
        assert message_from_v03(out) == message(role)


def test_every_state_has_its_v03_string() -> None:
    for name, state in STATES.items():
        status = types.TaskStatus(state=state)  # type: ignore[arg-type]
        out = task_to_v03(types.Task(id="t", context_id="c", status=status))
        assert out["status"]["state"] == name
        assert v03.Task.model_validate(out).status.state.value == name
        assert task_from_v03(out).status.state == state


def test_timestamps_with_an_offset_or_none_are_read_as_utc() -> None:
    base = {"kind": "task", "id": "t", "contextId": "c"}
    with_offset = task_from_v03(
        {**base, "status": {"state": "working", "timestamp": "2025-06-01T14:00:00+02:00"}}
    )
    naive = task_from_v03({**base, "status": {"state": "working", "timestamp": "2025-06-01T12:00:00.5"}})
    assert with_offset.status.timestamp.ToJsonString() == "2025-06-01T12:00:00Z"
    assert naive.status.timestamp.ToJsonString() == "2025-06-01T12:00:00.500Z"


# -- events and results -------------------------------------------------------------------------


def stream_events() -> list[types.StreamResponse]:
    update = types.TaskStatusUpdateEvent(task_id="t-1", context_id="c-1", metadata=to_struct({"m": 1}))
    update.status.state = S.TASK_STATE_WORKING
    chunk = types.TaskArtifactUpdateEvent(
        task_id="t-1", context_id="c-1", artifact=task().artifacts[0], append=True, last_chunk=True
    )
    return [
        types.StreamResponse(task=task(S.TASK_STATE_SUBMITTED)),
        types.StreamResponse(message=message()),
        types.StreamResponse(status_update=update),
        types.StreamResponse(artifact_update=chunk),
    ]


@pytest.mark.parametrize("event", stream_events(), ids=["task", "message", "status", "artifact"])
def test_stream_events_cross_both_ways_and_validate_as_sdk_responses(event: types.StreamResponse) -> None:
    out = stream_event_to_v03(event)
    answer = v03.SendStreamingMessageResponse.model_validate({"jsonrpc": "2.0", "id": 1, "result": out})
    assert stream_event_from_v03(out) == event
    assert stream_event_from_v03(dump(answer.root.result)) == event  # type: ignore[union-attr]


@pytest.mark.parametrize("state", list(S.values()))
def test_final_is_true_for_terminal_and_interrupted_states_and_dropped_on_the_way_in(state: int) -> None:
    event = types.StreamResponse()
    event.status_update.task_id, event.status_update.context_id = "t", "c"
    event.status_update.status.state = state  # type: ignore[assignment]
    out = stream_event_to_v03(event)
    v03.TaskStatusUpdateEvent.model_validate(out)
    terminal_or_interrupted = {
        "completed",
        "canceled",
        "failed",
        "rejected",
        "input-required",
        "auth-required",
    }
    assert out["final"] is (out["status"]["state"] in terminal_or_interrupted)
    assert (state in FINAL_STATES) is out["final"]
    assert stream_event_from_v03({**out, "final": not out["final"]}) == event  # a loss: final is not v1.0


def test_send_results_are_a_task_or_a_message() -> None:
    for result in (types.SendMessageResponse(task=task()), types.SendMessageResponse(message=message())):
        out = send_result_to_v03(result)
        v03.SendMessageResponse.model_validate({"jsonrpc": "2.0", "id": "x", "result": out})
        assert send_result_from_v03(out) == result
    with pytest.raises(errors.InvalidAgentResponseError):
        send_result_to_v03(types.SendMessageResponse())
    with pytest.raises(errors.InvalidParamsError, match="kind"):
        send_result_from_v03({"kind": "status-update"})


# -- the method table ---------------------------------------------------------------------------

PUSH = types.TaskPushNotificationConfig(
    task_id="t-1",
    id="p-1",
    url="https://hook.example/n",
    token="tok",
    authentication=types.AuthenticationInfo(scheme="Bearer", credentials="secret"),
)
SEND = types.SendMessageRequest(
    message=message(types.Role.ROLE_USER),
    configuration=types.SendMessageConfiguration(
        accepted_output_modes=["text/plain"],
        history_length=3,
        return_immediately=True,
        task_push_notification_config=PUSH,
    ),
    metadata=to_struct({"a": "b"}),
)
REQUESTS: dict[str, tuple[Message, Any, Any, Message]] = {
    # name: (v1.0 request, SDK params model, SDK response model, a v1.0 response)
    "message/send": (
        SEND,
        v03.MessageSendParams,
        v03.SendMessageResponse,
        types.SendMessageResponse(task=task()),
    ),
    "message/stream": (SEND, v03.MessageSendParams, v03.SendStreamingMessageResponse, stream_events()[2]),
    "tasks/get": (
        types.GetTaskRequest(id="t-1", history_length=2),
        v03.TaskQueryParams,
        v03.GetTaskResponse,
        task(),
    ),
    "tasks/cancel": (
        types.CancelTaskRequest(id="t-1", metadata=to_struct({"why": "done"})),
        v03.TaskIdParams,
        v03.CancelTaskResponse,
        task(S.TASK_STATE_CANCELED),
    ),
    "tasks/resubscribe": (
        types.SubscribeToTaskRequest(id="t-1"),
        v03.TaskIdParams,
        v03.SendStreamingMessageResponse,
        stream_events()[3],
    ),
    "tasks/pushNotificationConfig/set": (
        PUSH,
        v03.TaskPushNotificationConfig,
        v03.SetTaskPushNotificationConfigResponse,
        PUSH,
    ),
    "tasks/pushNotificationConfig/get": (
        types.GetTaskPushNotificationConfigRequest(task_id="t-1", id="p-1"),
        v03.GetTaskPushNotificationConfigParams,
        v03.GetTaskPushNotificationConfigResponse,
        PUSH,
    ),
    "tasks/pushNotificationConfig/list": (
        types.ListTaskPushNotificationConfigsRequest(task_id="t-1"),
        v03.ListTaskPushNotificationConfigParams,
        v03.ListTaskPushNotificationConfigResponse,
        types.ListTaskPushNotificationConfigsResponse(configs=[PUSH, PUSH]),
    ),
    "tasks/pushNotificationConfig/delete": (
        types.DeleteTaskPushNotificationConfigRequest(task_id="t-1", id="p-1"),
        v03.DeleteTaskPushNotificationConfigParams,
        v03.DeleteTaskPushNotificationConfigResponse,
        empty_pb2.Empty(),
    ),
}


def test_the_table_covers_every_v03_method_and_names_v10_methods() -> None:
    assert set(TABLE) == {*REQUESTS, "agent/getAuthenticatedExtendedCard"}
    for row in TABLE.values():
        assert row.v10 in METHODS
        assert row.streaming == METHODS[row.v10].streaming


@pytest.mark.parametrize("name", list(REQUESTS))
def test_each_method_crosses_both_ways_as_the_sdk_models_say(name: str) -> None:
    row = TABLE[name]
    request, params_model, response_model, response = REQUESTS[name]
    params = row.encode_params(request)
    params_model.model_validate(params)
    assert row.decode_params(params) == request
    assert row.decode_params(dump(params_model.model_validate(params))) == request
    result = row.encode_result(response)
    answer = response_model.model_validate({"jsonrpc": "2.0", "id": 7, "result": result})
    assert row.decode_result(result) == response
    assert row.decode_result(dump(answer.root)["result"] if result is not None else None) == response


def test_the_card_method_calls_its_hooks() -> None:
    row = TABLE["agent/getAuthenticatedExtendedCard"]
    assert row.decode_params(None) == types.GetExtendedAgentCardRequest()
    with pytest.raises(errors.InternalError, match="card"):
        row.encode_result(types.AgentCard(name="x"))
    hooked = method_table(
        encode_card=lambda card: {"name": card.name}, decode_card=lambda j: types.AgentCard(name=j["name"])
    )
    card = hooked["agent/getAuthenticatedExtendedCard"]
    assert card.encode_result(types.AgentCard(name="x")) == {"name": "x"}
    assert card.decode_result({"name": "y"}) == types.AgentCard(name="y")


# -- decisions ----------------------------------------------------------------------------------


def send(**config: Any) -> types.SendMessageRequest:
    msg = {"kind": "message", "messageId": "m", "role": "user", "parts": [{"kind": "text", "text": "hi"}]}
    params: dict[str, Any] = {"message": msg}
    if config:
        params["configuration"] = config
    return TABLE["message/send"].decode_params(params)  # type: ignore[return-value]


def test_blocking_absent_is_blocking_and_history_length_zero_is_unset() -> None:
    assert not send(acceptedOutputModes=[]).configuration.return_immediately
    assert not send(blocking=True).configuration.return_immediately
    assert send(blocking=False).configuration.return_immediately
    assert not send(historyLength=0).configuration.HasField("history_length")
    query = TABLE["tasks/get"].decode_params({"id": "t", "historyLength": 0})
    assert not query.HasField("history_length")  # type: ignore[attr-defined]


def test_a_v10_history_length_of_zero_cannot_be_said_in_v03() -> None:
    request = types.GetTaskRequest(id="t", history_length=0)
    assert TABLE["tasks/get"].encode_params(request) == {"id": "t"}


def test_a_push_config_without_id_takes_the_task_id() -> None:
    config = TABLE["tasks/pushNotificationConfig/set"].decode_params(
        {"taskId": "t-9", "pushNotificationConfig": {"url": "https://h/n"}}
    )
    assert (config.task_id, config.id) == ("t-9", "t-9")  # type: ignore[attr-defined]
    get = TABLE["tasks/pushNotificationConfig/get"].decode_params({"id": "t-9"})
    assert (get.task_id, get.id) == ("t-9", "t-9")  # type: ignore[attr-defined]
    msg = {"messageId": "m", "role": "user", "parts": [{"text": "hi"}], "taskId": "t-4"}
    sent = TABLE["message/send"].decode_params(
        {"message": msg, "configuration": {"pushNotificationConfig": {"url": "u"}}}
    )
    assert sent.configuration.task_push_notification_config.id == "t-4"  # type: ignore[attr-defined]


def test_the_losses_are_what_docs_versions_says() -> None:
    # media type and filename of a text or data part
    part = types.Part(text="x", media_type="text/markdown", filename="x.md")
    assert part_from_v03(part_to_v03(part)) == types.Part(text="x")
    assert part_from_v03(part_to_v03(data_part({"a": 1}))).media_type == ""
    # several authentication schemes: the first is kept
    config = TABLE["tasks/pushNotificationConfig/set"].decode_params(
        {
            "taskId": "t",
            "pushNotificationConfig": {"url": "u", "authentication": {"schemes": ["Bearer", "Basic"]}},
        }
    )
    assert config.authentication.scheme == "Bearer"  # type: ignore[attr-defined]
    # the tenant of a request and a config
    assert "tenant" not in str(TABLE["tasks/get"].encode_params(types.GetTaskRequest(id="t", tenant="acme")))
    assert TABLE["tasks/pushNotificationConfig/set"].encode_result(
        types.TaskPushNotificationConfig(tenant="acme", task_id="t", id="p", url="u")
    ) == {"taskId": "t", "pushNotificationConfig": {"id": "p", "url": "u"}}
    # metadata of tasks/get and tasks/resubscribe (checked, then dropped)
    assert TABLE["tasks/resubscribe"].decode_params(
        {"id": "t", "metadata": {"a": 1}}
    ) == types.SubscribeToTaskRequest(id="t")
    # role UNSPECIFIED in an answer is "agent"; in a request it is refused
    assert message_to_v03(types.Message(message_id="m"))["role"] == "agent"
    with pytest.raises(errors.InvalidParamsError, match="role"):
        TABLE["message/send"].encode_params(types.SendMessageRequest(message=types.Message(message_id="m")))
    # paging of the push-config list
    listed = types.ListTaskPushNotificationConfigsResponse(configs=[PUSH], next_page_token="more")
    assert TABLE["tasks/pushNotificationConfig/list"].encode_result(listed) == [
        TABLE["tasks/pushNotificationConfig/set"].encode_result(PUSH)
    ]


def test_a_data_part_wrapped_by_the_sdk_is_unwrapped() -> None:
    sdk = v03.Part(root=v03.DataPart(data={"value": [1, 2]}, metadata={"data_part_compat": True}))
    assert part_from_v03(dump(sdk)) == types.Part(data=data_part([1, 2]).data)
    plain = v03.Part(root=v03.DataPart(data={"value": [1, 2]}))  # no marker: an object with a member
    assert part_from_v03(dump(plain)) == types.Part(data=data_part({"value": [1, 2]}).data)


def test_parts_without_kind_are_read_by_their_member_as_the_sdk_does() -> None:
    assert part_from_v03({"text": "a"}) == types.Part(text="a")
    assert part_from_v03({"file": {"uri": "u"}}) == types.Part(url="u")
    assert part_from_v03({"data": {}}).WhichOneof("content") == "data"


# -- hostile params -----------------------------------------------------------------------------

GOOD_MESSAGE = {
    "kind": "message",
    "messageId": "m",
    "role": "user",
    "parts": [{"kind": "text", "text": "hi"}],
}


def with_message(**members: Any) -> dict[str, Any]:
    return {"message": {**GOOD_MESSAGE, **members}}


HOSTILE: list[tuple[str, object, str]] = [
    ("message/send", [], "params"),
    ("message/send", "x", "params"),
    ("message/send", None, "params"),
    ("tasks/get", 5, "params"),
    ("message/send", {}, "message"),
    ("message/send", {"message": "hi"}, "message"),
    ("message/send", with_message(messageId=5), "message.messageId"),
    ("message/send", with_message(messageId=None), "message.messageId"),
    ("message/send", with_message(role="robot"), "message.role"),
    ("message/send", with_message(role=None), "message.role"),
    ("message/send", with_message(kind="task"), "message.kind"),
    ("message/send", with_message(parts={"kind": "text"}), "message.parts"),
    ("message/send", with_message(parts=None), "message.parts"),
    ("message/send", with_message(parts=[{"kind": "image", "image": "x"}]), "message.parts[0].kind"),
    ("message/send", with_message(parts=[{}]), "message.parts[0].kind"),
    ("message/send", with_message(parts=[{"kind": "text"}]), "message.parts[0].text"),
    ("message/send", with_message(parts=[{"kind": "file", "file": {}}]), "message.parts[0].file"),
    (
        "message/send",
        with_message(parts=[{"kind": "file", "file": {"bytes": "AA==", "uri": "u"}}]),
        "message.parts[0].file",
    ),
    (
        "message/send",
        with_message(parts=[{"kind": "file", "file": {"bytes": "%%%"}}]),
        "message.parts[0].file.bytes",
    ),
    ("message/send", with_message(parts=[{"kind": "data", "data": [1]}]), "message.parts[0].data"),
    (
        "message/send",
        with_message(parts=[{"kind": "text", "text": "a", "metadata": [1]}]),
        "message.parts[0].metadata",
    ),
    ("message/send", with_message(referenceTaskIds=[1]), "message.referenceTaskIds[0]"),
    ("message/send", with_message(metadata={"n": 10**400}), "message.metadata"),
    ("message/send", {**with_message(), "configuration": []}, "configuration"),
    ("message/send", {**with_message(), "configuration": {"blocking": "yes"}}, "configuration.blocking"),
    (
        "message/send",
        {**with_message(), "configuration": {"historyLength": "5"}},
        "configuration.historyLength",
    ),
    (
        "message/send",
        {**with_message(), "configuration": {"historyLength": 2**40}},
        "configuration.historyLength",
    ),
    (
        "message/send",
        {**with_message(), "configuration": {"historyLength": True}},
        "configuration.historyLength",
    ),
    (
        "message/send",
        {**with_message(), "configuration": {"pushNotificationConfig": {}}},
        "configuration.pushNotificationConfig.url",
    ),
    ("tasks/get", {}, "id"),
    ("tasks/get", {"id": ["t"]}, "id"),
    ("tasks/get", {"id": "t", "metadata": "m"}, "metadata"),
    ("tasks/cancel", {"id": "t", "metadata": [1]}, "metadata"),
    ("tasks/resubscribe", {"id": None}, "id"),
    ("tasks/pushNotificationConfig/set", {"pushNotificationConfig": {"url": "u"}}, "taskId"),
    ("tasks/pushNotificationConfig/set", {"taskId": "t"}, "pushNotificationConfig"),
    (
        "tasks/pushNotificationConfig/set",
        {"taskId": "t", "pushNotificationConfig": {"url": "u", "authentication": {}}},
        "pushNotificationConfig.authentication.schemes",
    ),
    (
        "tasks/pushNotificationConfig/get",
        {"id": "t", "pushNotificationConfigId": 3},
        "pushNotificationConfigId",
    ),
    ("tasks/pushNotificationConfig/delete", {"id": "t"}, "pushNotificationConfigId"),
    ("tasks/pushNotificationConfig/list", {"id": 1}, "id"),
    ("agent/getAuthenticatedExtendedCard", [1], "params"),
]


@pytest.mark.parametrize(("name", "params", "member"), HOSTILE)
def test_hostile_params_are_refused_naming_the_member(name: str, params: object, member: str) -> None:
    with pytest.raises(errors.InvalidParamsError) as caught:
        TABLE[name].decode_params(params)
    (violation,) = caught.value.field_violations
    assert violation.field == ("" if member == "params" else member)
    assert member in caught.value.message


def nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels):
        value = {"a": value}
    return value


def test_deep_free_form_values_are_refused_where_the_v10_codec_refuses_them() -> None:
    assert _members.MAX_MESSAGE_DEPTH == transcoding.MAX_MESSAGE_DEPTH
    deep = with_message(parts=[{"kind": "data", "data": nested(5000)}])
    with pytest.raises(errors.InvalidParamsError, match="nests too deeply") as caught:
        TABLE["message/send"].decode_params(deep)
    assert caught.value.field_violations[0].field == "message.parts[0].data"
    # What the v1.0 codec accepts, this accepts (and the front's limit check reads v0.3 params).
    ok = nested(20)
    v10 = transcoding.decode(
        {"message": {"messageId": "m", "role": "ROLE_USER", "parts": [{"data": ok}]}},
        types.SendMessageRequest,
    )
    assert (
        TABLE["message/send"]
        .decode_params(with_message(parts=[{"kind": "data", "data": ok}]))
        .message.parts[0]
        .data
        == v10.message.parts[0].data
    )  # type: ignore[attr-defined]
    with pytest.raises(errors.LimitExceededError):
        check_json_request(
            with_message(parts=[{"kind": "data", "data": nested(40)}]), types.SendMessageRequest, Limits()
        )


def test_unknown_members_are_ignored() -> None:
    params = with_message(future="x")
    params["message"]["parts"][0]["shiny"] = {"new": 1}
    params["extra"] = [1, 2]
    assert TABLE["message/send"].decode_params(params).message.parts[0].text == "hi"  # type: ignore[attr-defined]


def test_answers_are_read_leniently_but_refused_as_invalid_agent_responses() -> None:
    answer = {"kind": "task", "id": "t", "contextId": "c", "status": {"state": "paused"}}
    assert TABLE["tasks/get"].decode_result(answer).status.state == S.TASK_STATE_UNSPECIFIED  # type: ignore[attr-defined]
    with pytest.raises(errors.InvalidAgentResponseError, match=r"result\.id"):
        TABLE["tasks/get"].decode_result({"kind": "task", "status": {"state": "working"}})
    with pytest.raises(errors.InvalidAgentResponseError, match="result"):
        TABLE["tasks/pushNotificationConfig/list"].decode_result({"configs": []})
    with pytest.raises(errors.InvalidAgentResponseError):
        TABLE["tasks/pushNotificationConfig/delete"].decode_result({"ok": True})
    with pytest.raises(errors.InvalidAgentResponseError, match="kind"):
        TABLE["message/stream"].decode_result({"kind": "mystery"})


def test_an_empty_part_in_our_answer_is_an_invalid_agent_response() -> None:
    with pytest.raises(errors.InvalidAgentResponseError, match="parts"):
        task_to_v03(types.Task(id="t", status=types.TaskStatus(message=types.Message(parts=[types.Part()]))))
