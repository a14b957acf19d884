"""Every A2A message, fully populated, crosses between the SDK's classes and ours unchanged."""

from __future__ import annotations

import pytest
from a2a.types import a2a_pb2 as sdk_pb2
from google.protobuf import json_format
from google.protobuf.message import Message

from a2a_grpc import interop, types
from tests.protofacts import oneof_variants, populate

CASES = [
    pytest.param(name, variant, id=f"{name}-{variant}")
    for name, d in types.DESCRIPTOR.message_types_by_name.items()
    for variant in range(oneof_variants(d))
]


def both(name: str, variant: int) -> tuple[Message, Message]:
    ours = populate(getattr(types, name)(), oneof_choice=variant)
    theirs = populate(getattr(sdk_pb2, name)(), oneof_choice=variant)
    return ours, theirs


def test_every_message_is_covered() -> None:
    names = {c.values[0] for c in CASES}
    assert names == set(sdk_pb2.DESCRIPTOR.message_types_by_name)
    assert len(names) == 44


@pytest.mark.parametrize(("name", "variant"), CASES)
def test_sdk_bytes_parse_to_an_equal_message_of_ours(name: str, variant: int) -> None:
    ours, theirs = both(name, variant)
    assert theirs.ByteSize() > 0
    parsed = type(ours).FromString(theirs.SerializeToString())
    assert parsed == ours
    assert parsed.SerializeToString(deterministic=True) == theirs.SerializeToString(deterministic=True)
    # Same ProtoJSON too: json names, enum names, int64 and bytes encodings.
    assert json_format.MessageToDict(parsed) == json_format.MessageToDict(theirs)


@pytest.mark.parametrize(("name", "variant"), CASES)
def test_our_bytes_parse_to_an_equal_sdk_message(name: str, variant: int) -> None:
    ours, theirs = both(name, variant)
    parsed = type(theirs).FromString(ours.SerializeToString())
    assert parsed == theirs
    assert interop.to_sdk(ours) == theirs
    assert interop.from_sdk(theirs) == ours


def test_a_difference_is_detected() -> None:
    ours, theirs = both("Task", 0)
    ours.status.state = types.TASK_STATE_FAILED
    theirs.status.state = sdk_pb2.TASK_STATE_COMPLETED
    assert type(ours).FromString(theirs.SerializeToString()) != ours


def test_conversion_keeps_the_class_family() -> None:
    task = types.Task(id="t-1", status=types.TaskStatus(state=types.TASK_STATE_WORKING))
    sdk_task = interop.to_sdk(task)
    assert isinstance(sdk_task, sdk_pb2.Task)
    assert isinstance(interop.from_sdk(sdk_task), types.Task)
    assert interop.to_sdk(sdk_task) is sdk_task
    assert interop.from_sdk(task) is task
