"""a2a_grpc.v03: the v0.3 proto beside v1.0, and every conversion between them.

Round trips v1.0 -> v0.3 -> v1.0 are equal where both versions have the field; each documented loss
is asserted exactly; hostile input is refused with InvalidParamsError naming the field; and the
official SDK 1.3 (its v0.3 compat layer and card parser) agrees with our bytes and our card.
"""

from __future__ import annotations

import base64
import random
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from google.protobuf import descriptor_pb2, json_format
from google.protobuf.message import DecodeError

from a2a_grpc import errors, interop, types
from a2a_grpc.bridge import transcoding
from a2a_grpc.parts import to_struct, to_value
from a2a_grpc.v03 import card as v03card
from a2a_grpc.v03 import convert, requests
from a2a_grpc.v03 import types as v03

sdk_v03_pb2 = pytest.importorskip("a2a.compat.v0_3.a2a_v0_3_pb2")


def invalid(field: str) -> Any:
    """pytest.raises for an InvalidParamsError whose violation names ``field``."""

    class _Ctx:
        def __enter__(self) -> None:
            self.cm = pytest.raises(errors.InvalidParamsError)
            self.info = self.cm.__enter__()

        def __exit__(self, *exc: Any) -> bool:
            handled = self.cm.__exit__(*exc)
            fields = [v.field for v in self.info.value.field_violations]
            assert fields == [field], (fields, self.info.value.message)
            return bool(handled)

    return _Ctx()


# --- the proto -----------------------------------------------------------------------------------


def _shape(file: Any) -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto()
    file.CopyToProto(proto)
    for name in ("name", "source_code_info", "options"):
        proto.ClearField(name)  # type: ignore[arg-type]
    return proto


def test_our_v03_proto_is_the_deployed_sdks_proto() -> None:
    # Messages, fields, numbers, JSON names, enums, RPCs and HTTP rules: all equal to a2a-sdk's.
    assert _shape(v03.DESCRIPTOR) == _shape(sdk_v03_pb2.DESCRIPTOR)
    assert v03.DESCRIPTOR.name == "a2a/v1/a2a.proto"
    assert v03.DESCRIPTOR.package == "a2a.v1"
    rule = v03.A2A_SERVICE.methods_by_name["CreateTaskPushNotificationConfig"].GetOptions()
    assert "/v1/{parent=tasks/*/pushNotificationConfigs}" in str(rule)


COEXIST = textwrap.dedent(
    """
    import {first}
    import {second}
    from a2a.compat.v0_3 import a2a_v0_3_pb2 as sdk
    from a2a_grpc.v03 import types as v03
    ours = v03.Task(id="t", context_id="c")
    ours.status.state = v03.TASK_STATE_CANCELLED
    ours.history.add(message_id="m", role=v03.ROLE_USER).content.add(text="hi")
    theirs = sdk.Task.FromString(ours.SerializeToString())
    assert theirs.status.state == sdk.TASK_STATE_CANCELLED and theirs.history[0].content[0].text == "hi"
    assert v03.Task.FromString(theirs.SerializeToString()) == ours
    print("ok")
    """
)


@pytest.mark.parametrize(
    ("first", "second"),
    [("a2a_grpc.v03", "a2a.compat.v0_3.a2a_v0_3_pb2"), ("a2a.compat.v0_3.a2a_v0_3_pb2", "a2a_grpc")],
)
def test_our_a2a_v1_and_the_sdks_load_in_one_interpreter(first: str, second: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", COEXIST.format(first=first, second=second)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


# --- builders ------------------------------------------------------------------------------------


def rich_parts() -> list[types.Part]:
    parts = [
        types.Part(text="hello"),
        types.Part(raw=b"\x00\xff binary", media_type="image/png", filename="a.png"),
        types.Part(url="https://example.com/r.pdf", media_type="application/pdf", filename="r.pdf"),
        types.Part(data=to_value({"city": "Paris", "n": [1.0, 2.5], "deep": {"x": None}})),
        types.Part(data=to_value([1.0, "two", None])),
        types.Part(data=to_value("just a string")),
        types.Part(data=to_value(3.5)),
        types.Part(data=to_value(True)),
        types.Part(data=to_value(None)),
    ]
    parts[0].metadata.CopyFrom(to_struct({"k": "v"}))
    parts[4].metadata.CopyFrom(to_struct({"mine": 1.0}))
    return parts


def rich_message(role: int = types.ROLE_USER) -> types.Message:
    message = types.Message(
        message_id="m-1", context_id="c-1", task_id="t-1", role=role, extensions=["urn:x"]
    )  # type: ignore[arg-type]
    message.parts.extend(rich_parts())
    message.metadata.CopyFrom(to_struct({"trace": "abc"}))
    return message


def rich_task() -> types.Task:
    task = types.Task(id="t-1", context_id="c-1")
    task.status.state = types.TASK_STATE_INPUT_REQUIRED
    task.status.message.CopyFrom(rich_message(types.ROLE_AGENT))
    task.status.timestamp.FromSeconds(1_700_000_000)
    artifact = task.artifacts.add(artifact_id="a-1", name="n", description="d", extensions=["urn:y"])
    artifact.parts.extend(rich_parts())
    artifact.metadata.CopyFrom(to_struct({"a": True}))
    task.history.extend([rich_message(), rich_message(types.ROLE_AGENT)])
    task.metadata.CopyFrom(to_struct({"t": [1.0]}))
    return task


# --- parts, messages, tasks ----------------------------------------------------------------------


@pytest.mark.parametrize("index", range(len(rich_parts())))
def test_every_part_kind_round_trips(index: int) -> None:
    part = rich_parts()[index]
    assert convert.to_v10_part(convert.to_v03_part(part)) == part


def test_bytes_travel_as_the_base64_text_and_raw_bytes_are_read_as_they_are() -> None:
    down = convert.to_v03_part(types.Part(raw=b"\x00\xff"))
    assert down.file.file_with_bytes == base64.b64encode(b"\x00\xff")
    # a peer that sends the raw bytes (not valid base64): taken as they are
    raw = v03.Part(file=v03.FilePart(file_with_bytes=b"\x00\xff\xfe", mime_type="x/y", name="f"))
    assert convert.to_v10_part(raw) == types.Part(raw=b"\x00\xff\xfe", media_type="x/y", filename="f")


def test_a_non_object_data_value_is_wrapped_as_the_sdk_does() -> None:
    down = convert.to_v03_part(types.Part(data=to_value([1.0, 2.0])))
    assert json_format.MessageToDict(down) == {
        "data": {"data": {"value": [1.0, 2.0]}},
        "metadata": {"data_part_compat": True},
    }


def test_text_and_data_parts_lose_media_type_and_filename() -> None:
    part = types.Part(text="x", media_type="text/markdown", filename="x.md")
    assert convert.to_v10_part(convert.to_v03_part(part)) == types.Part(text="x")
    part = types.Part(data=to_value({"a": 1.0}), media_type="application/json", filename="a.json")
    assert convert.to_v10_part(convert.to_v03_part(part)) == types.Part(data=to_value({"a": 1.0}))


def test_our_parts_are_the_official_sdks_bytes() -> None:
    # The same v1.0 message through SDK 1.3's compat layer (v1.0 -> pydantic v0.3 -> a2a.v1 proto)
    # and through ours: the same v0.3 proto, so the quirks (base64 bytes, data wrapping) match.
    from a2a.compat.v0_3 import conversions, proto_utils

    message = rich_message()
    theirs = proto_utils.ToProto.message(conversions.to_compat_message(interop.to_sdk(message)))
    assert theirs is not None
    ours = convert.to_v03_message(message)
    assert v03.Message.FromString(theirs.SerializeToString()) == ours
    back = conversions.to_core_message(proto_utils.FromProto.message(theirs))
    assert interop.from_sdk(back) == convert.to_v10_message(ours)


def test_message_round_trips_and_loses_reference_task_ids() -> None:
    message = rich_message()
    assert convert.to_v10_message(convert.to_v03_message(message)) == message
    message.reference_task_ids.extend(["t-0"])
    back = convert.to_v10_message(convert.to_v03_message(message))
    assert list(back.reference_task_ids) == []
    back.reference_task_ids.extend(["t-0"])
    assert back == message


def test_task_round_trips_and_status_message_is_the_update_field() -> None:
    task = rich_task()
    down = convert.to_v03_task(task)
    assert down.status.update.message_id == "m-1"
    assert json_format.MessageToDict(down)["status"]["message"]["messageId"] == "m-1"
    assert convert.to_v10_task(down) == task


@pytest.mark.parametrize("state", list(types.TaskState.values()))
def test_every_state_maps_by_name(state: int) -> None:
    down = convert.to_v03_status(types.TaskStatus(state=state))  # type: ignore[arg-type]
    name = types.TaskState.Name(state)  # type: ignore[arg-type]
    assert v03.TaskState.Name(down.state) == name.replace("CANCELED", "CANCELLED")
    assert convert.to_v10_status(down).state == state


@pytest.mark.parametrize("state", list(types.TaskState.values()))
def test_final_is_synthesized_for_terminal_and_interrupted_states(state: int) -> None:
    event = types.TaskStatusUpdateEvent(task_id="t", context_id="c")
    event.status.state = state  # type: ignore[assignment]
    event.metadata.CopyFrom(to_struct({"m": 1.0}))
    down = convert.to_v03_status_update(event)
    final = {"COMPLETED", "FAILED", "CANCELED", "REJECTED", "INPUT_REQUIRED", "AUTH_REQUIRED"}
    assert down.final is (types.TaskState.Name(state).removeprefix("TASK_STATE_") in final)  # type: ignore[arg-type]
    assert convert.to_v10_status_update(down) == event


def test_final_is_dropped_on_the_way_in() -> None:
    event = v03.TaskStatusUpdateEvent(task_id="t", context_id="c", final=True)
    event.status.state = v03.TASK_STATE_WORKING
    up = convert.to_v10_status_update(event)
    assert up.status.state == types.TASK_STATE_WORKING
    assert convert.to_v03_status_update(up).final is False


def stream_events() -> list[types.StreamResponse]:
    status = types.TaskStatusUpdateEvent(task_id="t-1", context_id="c-1")
    status.status.state = types.TASK_STATE_COMPLETED
    status.status.message.CopyFrom(rich_message(types.ROLE_AGENT))
    artifact = types.TaskArtifactUpdateEvent(task_id="t-1", context_id="c-1", append=True, last_chunk=True)
    artifact.artifact.CopyFrom(rich_task().artifacts[0])
    artifact.metadata.CopyFrom(to_struct({"z": "y"}))
    return [
        types.StreamResponse(task=rich_task()),
        types.StreamResponse(message=rich_message(types.ROLE_AGENT)),
        types.StreamResponse(status_update=status),
        types.StreamResponse(artifact_update=artifact),
    ]


@pytest.mark.parametrize("event", stream_events(), ids=lambda e: e.WhichOneof("payload"))
def test_every_stream_response_round_trips(event: types.StreamResponse) -> None:
    assert convert.to_v10_stream_response(convert.to_v03_stream_response(event)) == event


@pytest.mark.parametrize(
    "response",
    [types.SendMessageResponse(task=rich_task()), types.SendMessageResponse(message=rich_message())],
    ids=["task", "message"],
)
def test_every_send_response_round_trips(response: types.SendMessageResponse) -> None:
    down = convert.to_v03_send_response(response)
    assert set(json_format.MessageToDict(down)) <= {"task", "message"}
    assert convert.to_v10_send_response(down) == response


# --- requests ------------------------------------------------------------------------------------


def push_config(config_id: str = "p-1", task_id: str = "t-1") -> types.TaskPushNotificationConfig:
    config = types.TaskPushNotificationConfig(
        id=config_id, task_id=task_id, url="https://h/hook", token="tok"
    )
    config.authentication.scheme, config.authentication.credentials = "Bearer", "secret"
    return config


def test_send_request_round_trips() -> None:
    request = types.SendMessageRequest(message=rich_message())
    request.configuration.accepted_output_modes.extend(["text/plain"])
    request.configuration.return_immediately = True
    request.configuration.history_length = 3
    request.configuration.task_push_notification_config.CopyFrom(push_config(task_id=""))
    request.metadata.CopyFrom(to_struct({"r": 1.0}))
    down = requests.to_v03_send_request(request)
    assert down.configuration.blocking is False
    assert down.configuration.push_notification.authentication.schemes == ["Bearer"]
    assert requests.to_v10_send_request(down, blocking_by_default=True) == request


def test_send_request_absent_configuration_is_what_the_caller_says() -> None:
    bare = v03.SendMessageRequest(request=convert.to_v03_message(rich_message()))
    grpc_like = requests.to_v10_send_request(bare, blocking_by_default=False)
    assert grpc_like.configuration.return_immediately is True
    jsonrpc_like = requests.to_v10_send_request(bare, blocking_by_default=True)
    assert not jsonrpc_like.HasField("configuration")
    # a v1.0 request without configuration blocks: said explicitly to the v0.3 wire
    down = requests.to_v03_send_request(types.SendMessageRequest(message=rich_message()))
    assert down.HasField("configuration")
    assert down.configuration.blocking is True


def test_history_length_zero_is_unset_both_ways() -> None:
    config = v03.SendMessageConfiguration(blocking=True, history_length=0)
    assert not requests.to_v10_send_configuration(config).HasField("history_length")
    none = types.SendMessageConfiguration(history_length=0)
    assert requests.to_v03_send_configuration(none).history_length == 0  # v0.3 reads "all": a loss
    assert not requests.to_v10_get_task_request(v03.GetTaskRequest(name="tasks/t")).HasField("history_length")
    down = requests.to_v03_get_task_request(types.GetTaskRequest(id="t", history_length=0))
    assert down == v03.GetTaskRequest(name="tasks/t")
    request = types.GetTaskRequest(id="t", history_length=5)
    assert requests.to_v10_get_task_request(requests.to_v03_get_task_request(request)) == request


def test_task_requests_use_resource_names_and_lose_tenant_and_cancel_metadata() -> None:
    cancel = types.CancelTaskRequest(id="t-1", tenant="acme")
    cancel.metadata.CopyFrom(to_struct({"why": "x"}))
    assert requests.to_v03_cancel_task_request(cancel) == v03.CancelTaskRequest(name="tasks/t-1")
    assert requests.to_v10_cancel_task_request(
        v03.CancelTaskRequest(name="tasks/t-1")
    ) == types.CancelTaskRequest(id="t-1")
    sub = types.SubscribeToTaskRequest(id="t-1")
    assert requests.to_v03_subscribe_request(sub).name == "tasks/t-1"
    assert requests.to_v10_subscribe_request(requests.to_v03_subscribe_request(sub)) == sub
    assert requests.to_v03_send_request(
        types.SendMessageRequest(tenant="acme", message=rich_message())
    ).request
    assert (
        requests.to_v10_get_agent_card_request(v03.GetAgentCardRequest())
        == types.GetExtendedAgentCardRequest()
    )
    assert requests.to_v03_get_agent_card_request(types.GetExtendedAgentCardRequest(tenant="a")) == (
        v03.GetAgentCardRequest()
    )


def test_push_config_round_trips_and_keeps_the_first_scheme_only() -> None:
    config = push_config()
    down = requests.to_v03_task_push_config(config)
    assert down.name == "tasks/t-1/pushNotificationConfigs/p-1"
    assert requests.to_v10_task_push_config(down) == config
    down.push_notification_config.authentication.schemes.append("Basic")
    assert requests.to_v10_task_push_config(down).authentication.scheme == "Bearer"


def test_a_push_config_without_id_takes_the_task_id() -> None:
    bare = v03.CreateTaskPushNotificationConfigRequest(parent="tasks/t-9")
    bare.config.push_notification_config.url = "https://h/hook"
    assert requests.to_v10_create_push_config_request(bare).id == "t-9"
    assert requests.to_v03_task_push_config(push_config(config_id="", task_id="t-9")).name == (
        "tasks/t-9/pushNotificationConfigs/t-9"
    )
    named = v03.TaskPushNotificationConfig(name="tasks/t-9")
    assert requests.to_v10_task_push_config(named).id == "t-9"
    assert requests.to_v10_push_notification_config(v03.PushNotificationConfig(url="u"), "t-9").id == "t-9"


def test_create_push_config_takes_the_id_from_config_id_then_the_config_then_its_name() -> None:
    request = requests.to_v03_create_push_config_request(push_config())
    assert (request.parent, request.config_id) == ("tasks/t-1", "p-1")
    assert requests.to_v10_create_push_config_request(request) == push_config()
    request.config_id = ""
    request.config.push_notification_config.id = ""
    assert requests.to_v10_create_push_config_request(request).id == "p-1"  # from config.name
    request.config.name = ""
    assert requests.to_v10_create_push_config_request(request).id == "t-1"


def test_push_config_crud_requests_round_trip() -> None:
    get = types.GetTaskPushNotificationConfigRequest(task_id="t-1", id="p-1")
    assert requests.to_v03_get_push_config_request(get).name == "tasks/t-1/pushNotificationConfigs/p-1"
    assert requests.to_v10_get_push_config_request(requests.to_v03_get_push_config_request(get)) == get
    delete = types.DeleteTaskPushNotificationConfigRequest(task_id="t-1", id="p-1")
    assert (
        requests.to_v10_delete_push_config_request(requests.to_v03_delete_push_config_request(delete))
        == delete
    )
    listing = types.ListTaskPushNotificationConfigsRequest(task_id="t-1", page_size=5, page_token="x")
    assert requests.to_v03_list_push_configs_request(listing).parent == "tasks/t-1"
    assert (
        requests.to_v10_list_push_configs_request(requests.to_v03_list_push_configs_request(listing))
        == listing
    )
    answer = types.ListTaskPushNotificationConfigsResponse(next_page_token="n")
    answer.configs.extend([push_config("p-1"), push_config("p-2")])
    down = requests.to_v03_list_push_configs_response(answer)
    assert requests.to_v10_list_push_configs_response(down) == answer


# --- hostile input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: convert.to_v10_part(v03.Part()), "part"),
        (lambda: convert.to_v10_part(v03.Part(file=v03.FilePart(mime_type="x/y"))), "part.file"),
        (lambda: convert.to_v03_part(types.Part()), "part"),
        (lambda: convert.to_v03_part(types.Part(data=types.Value())), "part.data"),
        (lambda: convert.to_v10_message(v03.Message(role=7)), "message.role"),  # type: ignore[arg-type]
        (lambda: convert.to_v10_message(v03.Message(content=[v03.Part(), v03.Part()])), "message.content[0]"),
        (lambda: convert.to_v10_task(v03.Task(status=v03.TaskStatus(state=99))), "task.status.state"),  # type: ignore[arg-type]
        (lambda: convert.to_v03_task(types.Task(status=types.TaskStatus(state=-1))), "task.status.state"),  # type: ignore[arg-type]
        (lambda: convert.to_v10_send_response(v03.SendMessageResponse()), "payload"),
        (lambda: convert.to_v10_stream_response(v03.StreamResponse()), "payload"),
        (lambda: convert.to_v03_stream_response(types.StreamResponse()), "payload"),
        (lambda: requests.to_v10_send_request(v03.SendMessageRequest(), blocking_by_default=True), "request"),
        (lambda: requests.to_v10_get_task_request(v03.GetTaskRequest(name="task/1")), "name"),
        (lambda: requests.to_v10_get_task_request(v03.GetTaskRequest(name="tasks/")), "name"),
        (lambda: requests.to_v10_cancel_task_request(v03.CancelTaskRequest(name="tasks/a/b")), "name"),
        (lambda: requests.to_v10_subscribe_request(v03.TaskSubscriptionRequest()), "name"),
        (
            lambda: requests.to_v10_get_push_config_request(
                v03.GetTaskPushNotificationConfigRequest(name="tasks/t")
            ),
            "name",
        ),
        (
            lambda: requests.to_v10_delete_push_config_request(v03.DeleteTaskPushNotificationConfigRequest()),
            "name",
        ),
        (
            lambda: requests.to_v10_list_push_configs_request(v03.ListTaskPushNotificationConfigRequest()),
            "parent",
        ),
        (
            lambda: requests.to_v10_create_push_config_request(v03.CreateTaskPushNotificationConfigRequest()),
            "parent",
        ),
        (lambda: requests.to_v10_task_push_config(v03.TaskPushNotificationConfig(name="x")), "name"),
        (lambda: requests.to_v03_get_task_request(types.GetTaskRequest(id="a/b")), "id"),
        (lambda: requests.to_v03_get_task_request(types.GetTaskRequest()), "id"),
        (lambda: requests.to_v03_task_push_config(types.TaskPushNotificationConfig(id="p")), "task_id"),
        (
            lambda: requests.to_v03_get_push_config_request(
                types.GetTaskPushNotificationConfigRequest(task_id="t", id="a/b")
            ),
            "id",
        ),
    ],
)
def test_what_cannot_be_converted_is_refused_naming_the_field(call: Any, field: str) -> None:
    with invalid(field):
        call()


def test_a_compat_marked_data_part_without_value_is_refused() -> None:
    part = v03.Part(data=v03.DataPart(data=to_struct({"other": 1.0})))
    part.metadata.fields[convert.COMPAT_KEY].bool_value = True
    with invalid("part.data.data"):
        convert.to_v10_part(part)
    # a marker that is not the boolean true is the caller's metadata: kept, data taken as it is
    part.metadata.fields[convert.COMPAT_KEY].string_value = "true"
    assert convert.to_v10_part(part).metadata.fields[convert.COMPAT_KEY].string_value == "true"


def test_a_huge_name_is_quoted_cut() -> None:
    with pytest.raises(errors.InvalidParamsError) as info:
        requests.to_v10_get_task_request(v03.GetTaskRequest(name="x" * 1_000_000))
    assert len(info.value.message) < 1000


INBOUND = [
    (v03.Message, convert.to_v10_message),
    (v03.Task, convert.to_v10_task),
    (v03.StreamResponse, convert.to_v10_stream_response),
    (v03.SendMessageResponse, convert.to_v10_send_response),
    (v03.TaskPushNotificationConfig, requests.to_v10_task_push_config),
    (v03.CreateTaskPushNotificationConfigRequest, requests.to_v10_create_push_config_request),
    (v03.AgentCard, v03card.to_v10_agent_card),
]


@pytest.mark.parametrize(("cls", "call"), INBOUND, ids=lambda x: getattr(x, "__name__", "?"))
def test_mutated_wire_bytes_never_raise_anything_but_invalid_params(cls: Any, call: Any) -> None:
    rng = random.Random(18)
    seeds = {
        "Message": convert.to_v03_message(rich_message()),
        "Task": convert.to_v03_task(rich_task()),
        "StreamResponse": convert.to_v03_stream_response(stream_events()[2]),
        "SendMessageResponse": convert.to_v03_send_response(types.SendMessageResponse(task=rich_task())),
        "TaskPushNotificationConfig": requests.to_v03_task_push_config(push_config()),
        "CreateTaskPushNotificationConfigRequest": requests.to_v03_create_push_config_request(push_config()),
        "AgentCard": v03card.to_v03_agent_card(rich_card()),
    }
    seed = seeds[cls.DESCRIPTOR.name].SerializeToString()
    converted = 0
    for _ in range(300):
        data = bytearray(seed)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        try:
            message = cls.FromString(bytes(data))
        except DecodeError:  # bytes that are no message at all: not ours to convert
            continue
        try:
            call(message)
            converted += 1
        except errors.InvalidParamsError:
            pass
    assert converted > 0


# --- the agent card ------------------------------------------------------------------------------


def rich_card() -> types.AgentCard:
    card = types.AgentCard(name="Agent", description="does things", version="2.1", icon_url="https://i/x.png")
    card.documentation_url = "https://docs"
    card.supported_interfaces.add(url="grpc://h:1", protocol_binding="GRPC", protocol_version="1.0")
    card.supported_interfaces.add(url="http://h/rpc", protocol_binding="JSONRPC", protocol_version="0.3")
    card.supported_interfaces.add(url="http://h/rest", protocol_binding="HTTP+JSON", protocol_version="0.3")
    card.provider.organization, card.provider.url = "Org", "https://org"
    card.capabilities.streaming = True
    card.capabilities.push_notifications = True
    card.capabilities.extended_agent_card = True
    card.capabilities.extensions.add(uri="urn:ext", description="e", required=True).params.update({"p": 1})
    schemes = card.security_schemes
    schemes["key"].api_key_security_scheme.location = "header"
    schemes["key"].api_key_security_scheme.name = "X-Key"
    schemes["key"].api_key_security_scheme.description = "an API key"
    schemes["bearer"].http_auth_security_scheme.scheme = "Bearer"
    schemes["bearer"].http_auth_security_scheme.bearer_format = "JWT"
    code = schemes["oauth"].oauth2_security_scheme
    code.flows.authorization_code.authorization_url = "https://a/auth"
    code.flows.authorization_code.token_url = "https://a/token"
    code.flows.authorization_code.scopes["read"] = "reads"
    code.oauth2_metadata_url = "https://a/.well-known"
    schemes["cc"].oauth2_security_scheme.flows.client_credentials.token_url = "https://a/token"
    schemes["oidc"].open_id_connect_security_scheme.open_id_connect_url = "https://a/oidc"
    schemes["mtls"].mtls_security_scheme.description = "client cert"
    card.security_requirements.add().schemes["oauth"].list.extend(["read"])
    card.security_requirements.add().schemes["key"].SetInParent()
    card.default_input_modes.extend(["text/plain"])
    card.default_output_modes.extend(["text/plain", "application/json"])
    skill = card.skills.add(id="s", name="skill", description="sd", tags=["t"], examples=["e"])
    skill.input_modes.extend(["text/plain"])
    skill.security_requirements.add().schemes["bearer"].list.extend([])
    card.skills.add(id="s2", name="bare", description="no tags")
    signature = card.signatures.add(protected="hdr", signature="sig")
    signature.header.update({"kid": "k"})
    return card


def expected_after_v03(card: types.AgentCard) -> types.AgentCard:
    """``card`` with what v0.3 cannot say removed: the v1.0 interface, every tenant."""
    out = types.AgentCard()
    out.CopyFrom(card)
    del out.supported_interfaces[:]
    out.supported_interfaces.extend(
        types.AgentInterface(
            url=i.url, protocol_binding=i.protocol_binding, protocol_version=i.protocol_version
        )
        for i in card.supported_interfaces
        if v03card.is_v03_version(i.protocol_version)
    )
    return out


def test_card_round_trips_through_the_v03_proto() -> None:
    card = rich_card()
    down = v03card.to_v03_agent_card(card)
    assert (down.url, down.preferred_transport, down.protocol_version) == ("http://h/rpc", "JSONRPC", "0.3")
    assert [(i.url, i.transport) for i in down.additional_interfaces] == [
        ("http://h/rpc", "JSONRPC"),
        ("http://h/rest", "HTTP+JSON"),
    ]
    assert down.supports_authenticated_extended_card is True
    assert v03card.to_v10_agent_card(down) == expected_after_v03(card)


def test_card_losses_are_device_code_pkce_and_tenant() -> None:
    card = rich_card()
    card.security_schemes["oauth"].oauth2_security_scheme.flows.authorization_code.pkce_required = True
    card.security_schemes["device"].oauth2_security_scheme.flows.device_code.token_url = "https://a/device"
    card.supported_interfaces[1].tenant = "acme"
    back = v03card.to_v10_agent_card(v03card.to_v03_agent_card(card))
    assert (
        back.security_schemes["oauth"].oauth2_security_scheme.flows.authorization_code.pkce_required is False
    )
    assert back.security_schemes["device"].oauth2_security_scheme.flows.WhichOneof("flow") is None
    assert back.supported_interfaces[0].tenant == ""
    expected = expected_after_v03(rich_card())
    expected.security_schemes["device"].oauth2_security_scheme.flows.SetInParent()
    assert back == expected


def test_interfaces_of_v1_only_give_no_v03_members() -> None:
    card = types.AgentCard(name="n", description="d", version="1")
    card.supported_interfaces.add(url="grpc://h", protocol_binding="GRPC", protocol_version="1.0")
    assert v03card.v03_card_json(card) is None
    assert v03card.merged_card_json(card) == json_format.MessageToDict(card)
    assert v03card.to_v03_agent_card(card).url == ""


@pytest.mark.parametrize(
    ("version", "legacy"),
    [("", True), ("0.3", True), ("0.3.0", True), ("0.2.5", True), ("1.0", False), ("10", False)],
)
def test_which_versions_are_the_v03_wire(version: str, legacy: bool) -> None:
    assert v03card.is_v03_version(version) is legacy


def test_the_merged_card_reads_back_as_the_same_v10_card_with_our_parser() -> None:
    card = rich_card()
    merged = v03card.merged_card_json(card, transcoding.encode(card))
    assert transcoding.decode(merged, types.AgentCard, lenient=True) == card
    assert v03card.parse_card_json(merged) == card
    # the v0.3 members are there, in the v0.3 JSON shape
    assert (merged["url"], merged["preferredTransport"], merged["protocolVersion"]) == (
        "http://h/rpc",
        "JSONRPC",
        "0.3",
    )
    assert merged["supportsAuthenticatedExtendedCard"] is True
    assert merged["securitySchemes"]["key"]["type"] == "apiKey"
    assert merged["securitySchemes"]["key"]["in"] == "header"
    assert merged["securitySchemes"]["key"]["apiKeySecurityScheme"]["location"] == "header"
    assert merged["security"] == [{"oauth": ["read"]}, {"key": []}]
    assert merged["skills"][1]["tags"] == []


def test_the_merged_card_reads_back_with_the_official_sdk_13() -> None:
    from a2a.client.card_resolver import parse_agent_card

    card = rich_card()
    merged = v03card.merged_card_json(card)
    theirs = parse_agent_card(merged)
    assert types.AgentCard.FromString(theirs.SerializeToString()) == card


def test_the_merged_card_validates_as_the_sdks_v03_card() -> None:
    from a2a.compat.v0_3.types import AgentCard as V03Card

    merged = v03card.merged_card_json(rich_card())
    legacy = V03Card.model_validate(merged)
    assert legacy.url == "http://h/rpc"
    assert legacy.model_dump(mode="json", by_alias=True)["preferredTransport"] == "JSONRPC"
    assert [i.url for i in legacy.additional_interfaces or []] == ["http://h/rpc", "http://h/rest"]
    assert legacy.supports_authenticated_extended_card is True
    scheme = legacy.security_schemes["key"].root  # type: ignore[index]
    assert (scheme.type, scheme.in_.value, scheme.name) == ("apiKey", "header", "X-Key")
    assert legacy.security == [{"oauth": ["read"]}, {"key": []}]


def v03_json_card() -> dict[str, Any]:
    """A card as an a2a-sdk 0.3 agent publishes it."""
    return {
        "name": "Old",
        "description": "a v0.3 agent",
        "url": "http://old/",
        "version": "1.0.0",
        "protocolVersion": "0.3.0",
        "preferredTransport": "JSONRPC",
        "additionalInterfaces": [
            {"url": "http://old/", "transport": "JSONRPC"},
            {"url": "old:50051", "transport": "GRPC"},
        ],
        "capabilities": {"streaming": True, "stateTransitionHistory": True},
        "defaultInputModes": ["text/plain"],
        "defaultOutputModes": ["text/plain"],
        "supportsAuthenticatedExtendedCard": True,
        "securitySchemes": {
            "key": {"type": "apiKey", "in": "query", "name": "k"},
            "oauth": {
                "type": "oauth2",
                "flows": {"clientCredentials": {"tokenUrl": "https://t", "scopes": {}}},
            },
        },
        "security": [{"key": []}, {"oauth": ["a", "b"]}],
        "skills": [{"id": "s", "name": "S", "description": "d", "tags": ["x"], "security": [{"key": []}]}],
    }


def test_a_v03_card_json_is_read_as_the_official_sdk_reads_it() -> None:
    from a2a.client.card_resolver import parse_agent_card

    ours = v03card.parse_card_json(v03_json_card())
    assert [(i.url, i.protocol_binding, i.protocol_version) for i in ours.supported_interfaces] == [
        ("http://old/", "JSONRPC", "0.3.0"),
        ("old:50051", "GRPC", "0.3.0"),
    ]
    assert ours.capabilities.extended_agent_card is True
    assert ours.security_schemes["key"].api_key_security_scheme.location == "query"
    assert list(ours.security_requirements[1].schemes["oauth"].list) == ["a", "b"]
    theirs = types.AgentCard.FromString(parse_agent_card(v03_json_card()).SerializeToString())
    # the SDK keeps the repeated main interface; we drop the duplicate
    del theirs.supported_interfaces[1]
    assert ours == theirs


def test_a_v03_card_json_of_ours_reads_back() -> None:
    card = rich_card()
    legacy = v03card.v03_card_json(card)
    assert legacy is not None
    assert v03card.parse_card_json(legacy) == expected_after_v03(card)


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ([], "card"),
        ("card", "card"),
        ({"name": "x", "skills": "not a list"}, "card"),
        ({"name": "x", "capabilities": {"streaming": "yes"}}, "card"),
        ({"name": "x", "securitySchemes": {"s": {"type": "magic"}}}, "securitySchemes.s.type"),
        ({"name": "x", "securitySchemes": {"s": {"type": 5}}}, "securitySchemes.s.type"),
        ({"name": "x", "security": ["key"]}, "security[0]"),
        ({"name": "x", "skills": [{"id": "s", "security": [1]}]}, "skills[0].security[0]"),
        ({"name": "x", "supportedInterfaces": [{"url": 5}]}, "card"),
        ({"name": "x", "provider": {"organization": "o", "url": "u", "x": _nested(500)}}, "card"),
    ],
)
def test_a_bad_card_json_is_refused_naming_the_member(data: object, field: str) -> None:
    with invalid(field):
        v03card.parse_card_json(data)
