"""Every curl command of the README's cookbook, run against a real `a2a-grpc serve --http-port`.

The blocks run in order in one bash process (later blocks use the task ids earlier ones keep), each
output is checked by the check named after the block's first comment line, and a README block
without a check fails the test: the cookbook cannot drift from what the bridge does.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
SEPARATOR = "@@@ block "
SERVE = [sys.executable, "-m", "a2a_grpc.cli", "serve"]


def cookbook_blocks() -> list[tuple[str, str]]:
    """``(title, script)`` of every ```sh block in the README's "Curl cookbook" section."""
    text = README.read_text()
    section = text.split("## Curl cookbook", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    out = []
    for block in blocks:
        first = block.splitlines()[0]
        assert first.startswith("# "), f"a cookbook block must start with a '# title' line: {first!r}"
        out.append((first[2:].strip(), block))
    return out


def sse_events(output: str) -> list[dict[str, object]]:
    return [json.loads(line[len("data: ") :]) for line in output.splitlines() if line.startswith("data: ")]


def states(events: list[dict[str, object]]) -> list[str]:
    out = []
    for event in events:
        body = event.get("result", event)
        assert isinstance(body, dict)
        if "task" in body:
            out.append(body["task"]["status"]["state"])
        elif "statusUpdate" in body:
            out.append(body["statusUpdate"]["status"]["state"])
    return out


def check_card(out: str) -> None:
    card = json.loads(out)
    bindings = [i["protocolBinding"] for i in card["supportedInterfaces"]]
    assert bindings == ["GRPC", "GRPC", "urn:a2a-grpc:binding:session:v1", *["JSONRPC", "HTTP+JSON"] * 2]
    assert [i["protocolVersion"] for i in card["supportedInterfaces"]][-2:] == ["0.3", "0.3"]
    assert (card["protocolVersion"], card["preferredTransport"]) == ("0.3", "JSONRPC")  # for v0.3 clients


def check_rest_send(out: str) -> None:
    task = json.loads(out)["task"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"
    assert task["artifacts"][0]["parts"][0]["text"] == "echo hello"


def check_jsonrpc_send(out: str) -> None:
    reply = json.loads(out)
    assert reply["id"] == 1
    assert reply["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"


def check_rest_stream(out: str) -> None:
    events = sse_events(out)
    assert states(events)[-1] == "TASK_STATE_COMPLETED"
    assert sum("artifactUpdate" in e for e in events) == 3


def check_jsonrpc_stream(out: str) -> None:
    events = sse_events(out)
    assert all(e["id"] == 2 for e in events)
    assert states(events)[-1] == "TASK_STATE_COMPLETED"
    assert sum("artifactUpdate" in e["result"] for e in events) == 2  # type: ignore[operator]


def check_task_id(out: str) -> None:
    assert re.fullmatch(r"[0-9a-f-]{36}\n", out), out


def check_get(out: str) -> None:
    task = json.loads(out)
    assert task["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
    assert len(task["history"]) == 1


def check_list(out: str) -> None:
    page = json.loads(out)
    assert [t["status"]["state"] for t in page["tasks"]] == ["TASK_STATE_INPUT_REQUIRED"]
    assert page["nextPageToken"] == ""


def check_jsonrpc_list(out: str) -> None:
    page = json.loads(out)["result"]
    assert len(page["tasks"]) == 2
    assert page["nextPageToken"]


def check_push_config(out: str) -> None:
    config = json.loads(out)
    assert config["id"] == "hook-1"
    assert config["url"] == "https://hooks.example.com/hook"


def check_push_list(out: str) -> None:
    assert [c["id"] for c in json.loads(out)["configs"]] == ["hook-1"]


def check_empty(out: str) -> None:
    assert json.loads(out) == {}


def check_cancel(out: str) -> None:
    assert json.loads(out)["status"]["state"] == "TASK_STATE_CANCELED"


def check_subscribe(out: str) -> None:
    assert states(sse_events(out))[-1] == "TASK_STATE_COMPLETED"


def check_extended(out: str) -> None:
    error = json.loads(out)["error"]
    assert (error["code"], error["status"]) == (401, "UNAUTHENTICATED")
    assert "only for authenticated callers" in error["message"]


def check_tenant(out: str) -> None:
    assert json.loads(out)["task"]["status"]["state"] == "TASK_STATE_COMPLETED"


def check_rest_error(out: str) -> None:
    body, status = out.rsplit("\nHTTP ", 1)
    assert status.strip() == "404"
    error = json.loads(body)["error"]
    assert error["code"] == 404
    assert error["status"] == "NOT_FOUND"
    assert error["details"][0]["reason"] == "TASK_NOT_FOUND"


def check_jsonrpc_error(out: str) -> None:
    error = json.loads(out)["error"]
    assert error["code"] == -32001
    assert error["data"][0]["reason"] == "TASK_NOT_FOUND"


def check_deadline(out: str) -> None:
    body, status = out.rsplit("\nHTTP ", 1)
    assert status.strip() == "504"
    assert json.loads(body)["error"]["status"] == "DEADLINE_EXCEEDED"


CHECKS: dict[str, Callable[[str], None]] = {
    "setup": lambda out: None,
    "the agent card": check_card,
    "SendMessage, HTTP+JSON": check_rest_send,
    "SendMessage, JSON-RPC": check_jsonrpc_send,
    "SendStreamingMessage, HTTP+JSON": check_rest_stream,
    "SendStreamingMessage, JSON-RPC": check_jsonrpc_stream,
    "a task that waits for input": check_task_id,
    "GetTask": check_get,
    "ListTasks": check_list,
    "ListTasks, JSON-RPC": check_jsonrpc_list,
    "CreateTaskPushNotificationConfig": check_push_config,
    "GetTaskPushNotificationConfig": check_push_config,
    "ListTaskPushNotificationConfigs": check_push_list,
    "DeleteTaskPushNotificationConfig": check_empty,
    "CancelTask": check_cancel,
    "SubscribeToTask": check_subscribe,
    "GetExtendedAgentCard": check_extended,
    "a tenant": check_tenant,
    "an error, HTTP+JSON": check_rest_error,
    "the same error, JSON-RPC": check_jsonrpc_error,
    "a deadline": check_deadline,
}


def check_for(title: str) -> Callable[[str], None]:
    # A title's words before its first "(" or ";" or ":" name the check ("GetTask (query ...)").
    key = re.split(r" \(|; |: ", title, maxsplit=1)[0]
    assert key in CHECKS, f"README cookbook block {title!r} has no check in tests/test_cookbook.py"
    return CHECKS[key]


@pytest.fixture
def bridge_url() -> Iterator[str]:
    proc = subprocess.Popen(
        [*SERVE, "--grpc-port", "0", "--http-port", "0", "--store", "memory"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = None
        for _ in range(50):
            line = proc.stdout.readline()
            if not line:
                break
            if m := re.search(r"serving JSON-RPC and HTTP\+JSON at (http://\S+)", line):
                url = m.group(1)
                break
        assert url, "the server did not report its HTTP address"
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()
        assert proc.returncode == 0, f"serve exited with {proc.returncode}"


def test_every_cookbook_block_has_a_check() -> None:
    blocks = cookbook_blocks()
    assert len(blocks) >= 20
    for title, _ in blocks:
        check_for(title)


def test_cookbook_runs(bridge_url: str) -> None:
    if shutil.which("curl") is None:
        pytest.fail("curl is not installed: `make curl` installs it (the README's commands need it)")
    blocks = cookbook_blocks()
    script = ["set -euo pipefail"]
    for i, (_, body) in enumerate(blocks):
        script.append(f"printf '\\n{SEPARATOR}{i}\\n'")
        script.append(body)
    done = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        env={**os.environ, "A2A": bridge_url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"cookbook failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    outputs = re.split(rf"\n{SEPARATOR}(\d+)\n", done.stdout)[1:]
    seen = dict(zip(map(int, outputs[0::2]), outputs[1::2], strict=True))
    assert sorted(seen) == list(range(len(blocks)))
    for i, (title, _) in enumerate(blocks):
        try:
            check_for(title)(seen[i])
        except (AssertionError, ValueError, KeyError) as exc:
            raise AssertionError(f"cookbook block {title!r} gave unexpected output:\n{seen[i]}") from exc
