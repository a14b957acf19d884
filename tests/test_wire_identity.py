"""Our protos/lf/a2a/v1/a2a.proto is wire-identical to the official SDK's compiled A2A v1.0 proto."""

from __future__ import annotations

import difflib

import pytest
from a2a.types import a2a_pb2 as sdk_pb2
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import FileDescriptor

from a2a_grpc import types
from tests.protofacts import file_proto, wire_facts


def diff(ours: list[str], theirs: list[str]) -> str:
    return "\n".join(
        difflib.unified_diff(theirs, ours, "a2a-sdk (a2a.types.a2a_pb2)", "a2a-grpc", lineterm="", n=0)
    )


def test_descriptors_are_wire_identical_to_the_sdk() -> None:
    ours, theirs = wire_facts(types.DESCRIPTOR), wire_facts(sdk_pb2.DESCRIPTOR)
    assert ours == theirs, "wire contract differs from the official SDK:\n" + diff(ours, theirs)


def test_the_comparison_sees_every_kind_of_fact() -> None:
    facts = "\n".join(wire_facts(types.DESCRIPTOR))
    # One line per kind the issue names, so a silently empty fingerprint cannot pass.
    for needle in [
        "field .lf.a2a.v1.Part.data number=4 type=message type_name=.google.protobuf.Value label=optional "
        "oneof=content proto3_optional=False json_name=data",
        "field .lf.a2a.v1.ListTaskPushNotificationConfigsRequest.tenant number=4",
        "json_name=referenceTaskIds",
        "enum_value .lf.a2a.v1.TaskState.TASK_STATE_AUTH_REQUIRED = 8",
        "rpc A2AService.SubscribeToTask input=.lf.a2a.v1.SubscribeToTaskRequest "
        "output=.lf.a2a.v1.StreamResponse client_streaming=False server_streaming=True",
        "rpc A2AService.CancelTask http[1] post /{tenant}/tasks/{id=*}:cancel body=*",
        "rpc A2AService.DeleteTaskPushNotificationConfig http[0] delete "
        "/tasks/{task_id=*}/pushNotificationConfigs/{id=*}",
    ]:
        assert needle in facts
    assert len([f for f in facts.splitlines() if f.startswith("rpc ") and "input=" in f]) == 11


@pytest.mark.parametrize(
    "mutation",
    ["field_number", "json_name", "oneof", "enum_value", "streaming", "http_rule", "new_field"],
)
def test_a_single_difference_fails_with_a_readable_diff(mutation: str) -> None:
    from google.api import annotations_pb2

    fdp = file_proto(types.DESCRIPTOR)
    task = next(m for m in fdp.message_type if m.name == "Task")
    part = next(m for m in fdp.message_type if m.name == "Part")
    method = fdp.service[0].method[0]
    if mutation == "field_number":
        task.field[1].number = 20
    elif mutation == "json_name":
        task.field[1].json_name = "context_id"
    elif mutation == "oneof":
        part.field[4].oneof_index = 0
    elif mutation == "enum_value":
        fdp.enum_type[0].value[3].number = 30
    elif mutation == "streaming":
        method.server_streaming = True
    elif mutation == "http_rule":
        method.options.Extensions[annotations_pb2.http].post = "/message:sent"
    elif mutation == "new_field":
        task.field.add(name="extra", number=99, label=1, type=9, json_name="extra")
    pool = descriptor_pool.DescriptorPool()
    for dep in types.DESCRIPTOR.dependencies:
        _add_with_deps(pool, dep)
    mutated_file = pool.AddSerializedFile(fdp.SerializeToString())
    ours, theirs = wire_facts(mutated_file), wire_facts(sdk_pb2.DESCRIPTOR)
    assert ours != theirs
    text = diff(ours, theirs)
    assert text.count("\n+") >= 1
    assert "a2a-sdk" in text


def _add_with_deps(pool: descriptor_pool.DescriptorPool, file: FileDescriptor) -> None:
    for dep in file.dependencies:
        _add_with_deps(pool, dep)
    try:
        pool.FindFileByName(file.name)
    except KeyError:
        pool.AddSerializedFile(file.serialized_pb)


def test_package_and_file_options_that_reach_generated_code() -> None:
    fdp: descriptor_pb2.FileDescriptorProto = file_proto(types.DESCRIPTOR)
    assert fdp.package == "lf.a2a.v1"
    assert fdp.syntax == "proto3"
    assert list(fdp.dependency) == list(file_proto(sdk_pb2.DESCRIPTOR).dependency)
