"""a2a_grpc and the official SDK's a2a.types import into one process in either order."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import {first}
    import {second}
    from a2a_grpc import interop, types
    from a2a.types import a2a_pb2 as sdk

    ours = types.Task(id="t-1", context_id="c-1")
    ours.status.state = types.TASK_STATE_INPUT_REQUIRED
    ours.status.timestamp.FromSeconds(1_700_000_000)
    ours.metadata.update({{"k": [1, "x"]}})
    ours.artifacts.add(artifact_id="a-1").parts.add(raw=b"\\x00\\xff")
    theirs = interop.to_sdk(ours)
    assert type(theirs) is sdk.Task, type(theirs)
    assert theirs.status.state == sdk.TASK_STATE_INPUT_REQUIRED
    assert theirs.artifacts[0].parts[0].raw == b"\\x00\\xff"
    back = interop.from_sdk(theirs)
    assert type(back) is types.Task and back == ours
    # The SDK's own machinery still works on its classes after ours were loaded.
    from google.protobuf import json_format
    assert json_format.MessageToDict(theirs)["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
    print("ok")
    """
)


@pytest.mark.parametrize(
    ("first", "second"),
    [("a2a_grpc.types", "a2a.types"), ("a2a.types", "a2a_grpc.types")],
    ids=["ours-first", "sdk-first"],
)
def test_both_import_orders_in_a_fresh_interpreter(first: str, second: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(first=first, second=second)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_to_sdk_without_the_sdk_says_what_to_do() -> None:
    code = (
        "from a2a_grpc import interop, types\n"
        "try:\n    interop.to_sdk(types.Task())\nexcept LookupError as e:\n    print(e)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "import a2a.types" in result.stdout
