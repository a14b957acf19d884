"""A driver of the official a2a-sdk 0.3 client, for the v0.3 interop tests.

Runs INSIDE build/sdk03-venv (a2a-sdk 0.3.x), never in our virtualenv:

    python tests/sdk03/client.py TRANSPORT TARGET SCENARIO [ARGS...] [--card] [--timeout S]

TRANSPORT is jsonrpc, rest or grpc. TARGET is the interface to call (the JSON-RPC URL, the REST
base URL, or the gRPC host:port), or with ``--card`` the URL of an agent card, from which the SDK's
ClientFactory picks the TRANSPORT interface the way a v0.3 application would.

It prints JSON lines ``{"scenario": S, "step": STEP, ...}`` of what it saw, normalized so that
they do not depend on the binding (normal.py says how). Scenarios (see SCENARIOS):
``send [TEXT]``, ``stream [TEXT]``, ``get [TEXT]``, ``get-task ID [HISTORY]``, ``cancel [S]``,
``resubscribe [S]``, ``push-config [URL]``, ``push URL [TEXT]``, ``errors``, ``card`` (needs ``--card``).
An error the scenario expects is a line with ``"error"``; an unexpected one ends the run with a
``"crash"`` line and exit status 2 (3 for the time limit).

Push-config list and delete go raw (httpx JSON-RPC, raw REST, the raw gRPC stub), because the
0.3 client has no methods for them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))  # normal.py, beside this file

import grpc
import httpx
import normal
from a2a.client import A2ACardResolver, Client, ClientConfig, ClientFactory
from a2a.grpc import a2a_pb2, a2a_pb2_grpc
from a2a.types import (
    AgentCapabilities,
    AgentCard,
    GetTaskPushNotificationConfigParams,
    Message,
    Part,
    PushNotificationConfig,
    Role,
    Task,
    TaskIdParams,
    TaskPushNotificationConfig,
    TaskQueryParams,
    TextPart,
)

TRANSPORTS = {"jsonrpc": "JSONRPC", "rest": "HTTP+JSON", "grpc": "GRPC"}


def emit(scenario: str, step: str, **fields: Any) -> None:
    print(json.dumps({"scenario": scenario, "step": step, **fields}, default=str), flush=True)


def user_message(text: str, task_id: str | None = None, context_id: str | None = None) -> Message:
    return Message(
        role=Role.user,
        message_id=str(uuid.uuid4()),
        parts=[Part(root=TextPart(text=text))],
        task_id=task_id,
        context_id=context_id,
    )


class Session:
    """The card and the SDK clients of one run; every client has its own HTTP client or channel."""

    def __init__(self, transport: str, target: str, card: AgentCard) -> None:
        self.transport, self.target, self.card = transport, target, card
        self.url = interface_url(card, TRANSPORTS[transport])
        self._clients: list[Client] = []

    def client(
        self, *, streaming: bool = False, polling: bool = False, push: PushNotificationConfig | None = None
    ) -> Client:
        config = ClientConfig(
            streaming=streaming,
            polling=polling,
            push_notification_configs=[push] if push else [],
            httpx_client=httpx.AsyncClient(timeout=30.0),
            grpc_channel_factory=grpc.aio.insecure_channel,
            supported_transports=[TRANSPORTS[self.transport]],
            use_client_preference=True,
        )
        client = ClientFactory(config).create(self.card)
        self._clients.append(client)
        return client

    async def close(self) -> None:
        for client in self._clients:
            with contextlib.suppress(Exception):
                await client.close()  # type: ignore[attr-defined]


def interface_url(card: AgentCard, label: str) -> str:
    if (card.preferred_transport or "JSONRPC") == label:
        return card.url
    for interface in card.additional_interfaces or []:
        if interface.transport == label:
            return interface.url
    raise SystemExit(f"the card offers no {label} interface")


async def load_card(transport: str, target: str, from_card: bool) -> AgentCard:
    if from_card:
        parts = urlsplit(target)
        async with httpx.AsyncClient(timeout=30.0) as http:
            resolver = A2ACardResolver(http, f"{parts.scheme}://{parts.netloc}", parts.path)
            return await resolver.get_agent_card()
    # No card: one interface, the way a v0.3 application that knows its peer would describe it.
    return AgentCard(
        name="direct",
        description="the interface named on the command line",
        url=target,
        version="0",
        protocol_version="0.3.0",
        preferred_transport=TRANSPORTS[transport],
        capabilities=AgentCapabilities(streaming=True, push_notifications=True),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[],
    )


# --- sends ----------------------------------------------------------------------------------------


async def send_blocking(session: Session, text: str) -> Task | Message:
    async for item in session.client().send_message(user_message(text)):
        return item if isinstance(item, Message) else item[0]
    raise RuntimeError("send_message yielded nothing")


async def send_nonblocking(session: Session, text: str) -> Task:
    async for item in session.client(polling=True).send_message(user_message(text)):
        if isinstance(item, Message):
            raise RuntimeError(f"a Message, not a task: {normal.message(item)}")
        return item[0]
    raise RuntimeError("send_message yielded nothing")


async def follow(scenario: str, pairs: AsyncIterator[Any]) -> Task | Message | None:
    """Emit every streamed event; return the client's aggregated task (or the Message)."""
    last: Task | Message | None = None
    async for item in pairs:
        if isinstance(item, Message):
            emit(scenario, "event", **normal.message(item))
            return item
        task, update = item
        emit(scenario, "event", **(normal.event(update) if update is not None else normal.task(task)))
        last = task
    return last


def result_fields(item: Task | Message | None) -> dict[str, Any]:
    if item is None:
        return {"kind": "none"}
    return normal.message(item) if isinstance(item, Message) else normal.task(item)


# --- scenarios ------------------------------------------------------------------------------------


async def scenario_send(s: Session, text: str = "echo hello") -> None:
    emit("send", "result", **result_fields(await send_blocking(s, text)))


async def scenario_stream(s: Session, text: str = "stream 3") -> None:
    last = await follow("stream", s.client(streaming=True).send_message(user_message(text)))
    emit("stream", "result", **result_fields(last))


async def scenario_get(s: Session, text: str = "echo get me") -> None:
    sent = await send_blocking(s, text)
    assert isinstance(sent, Task), sent
    emit("get", "sent", **normal.task(sent))
    got = await s.client().get_task(TaskQueryParams(id=sent.id))
    emit("get", "result", **normal.task(got))


async def scenario_get_task(s: Session, task_id: str, history: str = "") -> None:
    params = TaskQueryParams(id=task_id, history_length=int(history) if history else None)
    emit("get-task", "result", **normal.task(await s.client().get_task(params)))


async def scenario_cancel(s: Session, seconds: str = "30") -> None:
    sent = await send_nonblocking(s, f"slow {seconds}")
    emit("cancel", "sent", **normal.task(sent))
    canceled = await s.client().cancel_task(TaskIdParams(id=sent.id))
    emit("cancel", "cancel", **normal.task(canceled))
    emit("cancel", "result", **normal.task(await s.client().get_task(TaskQueryParams(id=sent.id))))


async def scenario_resubscribe(s: Session, seconds: str = "2") -> None:
    sent = await send_nonblocking(s, f"slow {seconds}")
    emit("resubscribe", "sent", **normal.task(sent))
    last = await follow("resubscribe", s.client(streaming=True).resubscribe(TaskIdParams(id=sent.id)))
    emit("resubscribe", "streamed", **result_fields(last))
    emit("resubscribe", "result", **normal.task(await s.client().get_task(TaskQueryParams(id=sent.id))))


async def scenario_push_config(s: Session, url: str = "http://127.0.0.1:9/webhook") -> None:
    task = await send_blocking(s, "input")
    assert isinstance(task, Task), task
    emit("push-config", "sent", **normal.task(task))
    for config_id in ("cfg-1", "cfg-2"):
        config = PushNotificationConfig(id=config_id, url=url, token=f"token-{config_id}")
        made = await s.client().set_task_callback(
            TaskPushNotificationConfig(task_id=task.id, push_notification_config=config)
        )
        emit("push-config", "set", **normal.push_config(made))
    params = GetTaskPushNotificationConfigParams(id=task.id, push_notification_config_id="cfg-2")
    await step("push-config", "get", lambda: s.client().get_task_callback(params), normal.push_config)
    raw = RAW[s.transport](s.url)
    await step("push-config", "list", lambda: raw.list(task.id), normal.config_list)
    await step("push-config", "delete", lambda: raw.delete(task.id, "cfg-1"), lambda _: {"deleted": True})
    await step("push-config", "list-after", lambda: raw.list(task.id), normal.config_list)


async def scenario_push(s: Session, url: str, text: str = "echo pushed") -> None:
    """A blocking send whose configuration carries a push config: the agent posts to ``url``."""
    config = PushNotificationConfig(id="push-1", url=url, token="push-token")
    async for item in s.client(push=config).send_message(user_message(text)):
        emit("push", "result", **result_fields(item if isinstance(item, Message) else item[0]))
        return
    raise RuntimeError("send_message yielded nothing")


async def scenario_errors(s: Session) -> None:
    unknown = f"no-such-task-{uuid.uuid4()}"
    done = await send_blocking(s, "echo finished")
    assert isinstance(done, Task), done
    probes: dict[str, Callable[[], Awaitable[Any]]] = {
        "get-unknown": lambda: s.client().get_task(TaskQueryParams(id=unknown)),
        "cancel-unknown": lambda: s.client().cancel_task(TaskIdParams(id=unknown)),
        "cancel-completed": lambda: s.client().cancel_task(TaskIdParams(id=done.id)),
        "resubscribe-unknown": lambda: drain(s.client(streaming=True).resubscribe(TaskIdParams(id=unknown))),
    }
    for name, call in probes.items():
        await step("errors", name, call, lambda got: {"unexpected": normal.any_result(got)})


async def scenario_card(s: Session) -> None:
    emit("card", "result", **normal.card(s.card))


async def drain(stream: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in stream]


async def step(
    scenario: str, name: str, call: Callable[[], Awaitable[Any]], fields: Callable[[Any], dict[str, Any]]
) -> None:
    """One call whose error is an answer too: emitted as ``error`` rather than ending the run."""
    try:
        got = await call()
    except (grpc.aio.AioRpcError, normal.ClientErrors, normal.RawError) as exc:
        emit(scenario, name, error=normal.error(exc))
        return
    emit(scenario, name, **fields(got))


SCENARIOS: dict[str, Callable[..., Awaitable[None]]] = {
    "send": scenario_send,
    "stream": scenario_stream,
    "get": scenario_get,
    "get-task": scenario_get_task,
    "cancel": scenario_cancel,
    "resubscribe": scenario_resubscribe,
    "push-config": scenario_push_config,
    "push": scenario_push,
    "errors": scenario_errors,
    "card": scenario_card,
}


# --- raw calls the 0.3 client lacks ---------------------------------------------------------------


class RawJsonRpc:
    def __init__(self, url: str) -> None:
        self.url = url

    async def _call(self, method: str, params: dict[str, Any]) -> Any:
        body = {"jsonrpc": "2.0", "id": str(uuid.uuid4()), "method": method, "params": params}
        async with httpx.AsyncClient(timeout=30.0) as http:
            answer = (await http.post(self.url, json=body)).json()
        if "error" in answer:
            raise normal.RawError(answer["error"].get("code"), None, answer["error"].get("message", ""))
        return answer.get("result")

    async def list(self, task_id: str) -> Any:
        return await self._call("tasks/pushNotificationConfig/list", {"id": task_id})

    async def delete(self, task_id: str, config_id: str) -> Any:
        params = {"id": task_id, "pushNotificationConfigId": config_id}
        return await self._call("tasks/pushNotificationConfig/delete", params)


class RawRest:
    def __init__(self, url: str) -> None:
        self.base = url.rstrip("/")

    async def _call(self, verb: str, path: str) -> Any:
        async with httpx.AsyncClient(timeout=30.0) as http:
            answer = await http.request(verb, self.base + path)
        if answer.status_code >= 400:
            raise normal.RawError(None, answer.status_code, answer.text[:300])
        return answer.json() if answer.content else None

    async def list(self, task_id: str) -> Any:
        return await self._call("GET", f"/v1/tasks/{task_id}/pushNotificationConfigs")

    async def delete(self, task_id: str, config_id: str) -> Any:
        return await self._call("DELETE", f"/v1/tasks/{task_id}/pushNotificationConfigs/{config_id}")


class RawGrpc:
    def __init__(self, target: str) -> None:
        self.target = target

    async def list(self, task_id: str) -> Any:
        async with grpc.aio.insecure_channel(self.target) as channel:
            stub = a2a_pb2_grpc.A2AServiceStub(channel)  # type: ignore[no-untyped-call]
            request = a2a_pb2.ListTaskPushNotificationConfigRequest(parent=f"tasks/{task_id}")
            return await stub.ListTaskPushNotificationConfig(request, timeout=30.0)

    async def delete(self, task_id: str, config_id: str) -> Any:
        async with grpc.aio.insecure_channel(self.target) as channel:
            stub = a2a_pb2_grpc.A2AServiceStub(channel)  # type: ignore[no-untyped-call]
            name = f"tasks/{task_id}/pushNotificationConfigs/{config_id}"
            request = a2a_pb2.DeleteTaskPushNotificationConfigRequest(name=name)
            return await stub.DeleteTaskPushNotificationConfig(request, timeout=30.0)


RAW: dict[str, Callable[[str], Any]] = {"jsonrpc": RawJsonRpc, "rest": RawRest, "grpc": RawGrpc}


# --- main -----------------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> int:
    card = await load_card(args.transport, args.target, args.card)
    session = Session(args.transport, args.target, card)
    try:
        await asyncio.wait_for(SCENARIOS[args.scenario](session, *args.args), args.timeout)
    except TimeoutError:
        emit(args.scenario, "crash", error={"class": "Timeout", "message": f"over {args.timeout} s"})
        return 3
    except Exception as exc:
        emit(args.scenario, "crash", error=normal.error(exc))
        return 2
    finally:
        await session.close()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("transport", choices=sorted(TRANSPORTS))
    parser.add_argument("target")
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("args", nargs="*")
    parser.add_argument("--card", action="store_true", help="TARGET is an agent card URL")
    parser.add_argument("--timeout", type=float, default=60.0)
    return asyncio.run(run(parser.parse_intermixed_args()))


if __name__ == "__main__":
    sys.exit(main())
