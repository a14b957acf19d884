"""The next agent of a chain, over the binding an instruction names: the one place a transport is chosen.

:func:`open_peer` reads the agent card at ``<agent_card_uri>/.well-known/agent-card.json`` and
returns a :class:`Peer` over the card's interface of that binding: gRPC through
:class:`a2a_grpc.client.A2AClient`, JSON-RPC and HTTP+JSON through the reverse bridge's JSON
upstreams (:func:`a2a_grpc.bridge.outbound.open_json_upstream`).

The A2A version follows the card: its interface of that binding for A2A 1.0 when it has one
(calls say ``A2A-Version: 1.0``), else its 0.x one, spoken in v0.3 (the kit's v0.3 agents: a v0.3
card, ``url`` + ``additionalInterfaces``, is read by :func:`a2a_grpc.v03.card.parse_card_json`
inside :func:`~a2a_grpc.bridge.outbound.fetch_card`; the v0.3 JSON-RPC method names, the
``/v1/...`` routes, the ``a2a.v1.A2AService`` gRPC service, all translated to and from the v1.0
messages used here). A 1.0 interface is never passed over for a 0.x one (spec 3.6.3).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Protocol

import httpx
from google.protobuf.message import Message

from a2a_grpc import errors, types
from a2a_grpc.bridge.outbound import (
    JsonRpcUpstream,
    RestUpstream,
    card_url_for,
    fetch_card,
    open_json_upstream,
)
from a2a_grpc.bridge.upstream import Call
from a2a_grpc.client import A2AClient

__all__ = ["BINDINGS", "Peer", "binding_of", "open_peer"]

VERSION = "1.0"
"""The A2A version every outbound call names (the ``A2A-Version`` service parameter)."""

BINDINGS = {
    "JSONRPC": "JSONRPC",
    "GRPC": "GRPC",
    "HTTP_JSON": "HTTP+JSON",
    "HTTP+JSON": "HTTP+JSON",
    "REST": "HTTP+JSON",
}
"""The kit's transport names (any case; the runner writes jsonrpc, grpc, http_json) and the card
binding each one means."""


def binding_of(transport: str) -> str:
    """The card binding of a kit transport name; InvalidParamsError for one we do not know
    (the kit's Python agent falls back to JSON-RPC silently; a typo should be seen)."""
    binding = BINDINGS.get(transport.strip().upper())
    if binding is None:
        raise errors.InvalidParamsError(
            f"unsupported transport {errors.echo(transport)}: use one of jsonrpc, grpc, http_json"
        )
    return binding


class Peer(Protocol):
    """The four calls the kit's behaviours make on the next agent."""

    @property
    def binding(self) -> str:
        """The card binding the calls go over (GRPC, JSONRPC, HTTP+JSON)."""
        ...

    async def send(self, request: types.SendMessageRequest) -> types.SendMessageResponse: ...

    def stream(self, request: types.SendMessageRequest) -> AsyncIterator[types.StreamResponse]: ...

    def subscribe(self, task_id: str) -> AsyncIterator[types.StreamResponse]: ...

    async def cancel(self, task_id: str) -> types.Task: ...

    async def aclose(self) -> None: ...


@dataclass
class _GrpcPeer:
    client: A2AClient
    timeout: float
    binding: str = "GRPC"

    async def send(self, request: types.SendMessageRequest) -> types.SendMessageResponse:
        return await self.client.send_message(request, timeout=self.timeout)

    def stream(self, request: types.SendMessageRequest) -> AsyncIterator[types.StreamResponse]:
        return self.client.send_streaming_message(request, timeout=self.timeout)

    def subscribe(self, task_id: str) -> AsyncIterator[types.StreamResponse]:
        return self.client.subscribe_to_task(task_id, timeout=self.timeout)

    async def cancel(self, task_id: str) -> types.Task:
        return await self.client.cancel_task(task_id, timeout=self.timeout)

    async def aclose(self) -> None:
        await self.client.close()


@dataclass
class _JsonPeer:
    upstream: JsonRpcUpstream | RestUpstream
    http: httpx.AsyncClient
    timeout: float

    @property
    def binding(self) -> str:
        return self.upstream.binding

    def _call(self) -> Call:
        # A v0.3 upstream (outbound03) replaces the version header with its own 0.3.
        return Call(headers={"a2a-version": VERSION}, timeout=self.timeout)

    async def send(self, request: types.SendMessageRequest) -> types.SendMessageResponse:
        answer = await self.upstream.unary("SendMessage", request, self._call())
        assert isinstance(answer, types.SendMessageResponse)
        return answer

    async def _events(self, method: str, request: Message) -> AsyncGenerator[types.StreamResponse, None]:
        async with contextlib.aclosing(self.upstream.stream(method, request, self._call())) as events:
            async for event in events:
                assert isinstance(event, types.StreamResponse)
                yield event

    def stream(self, request: types.SendMessageRequest) -> AsyncIterator[types.StreamResponse]:
        return self._events("SendStreamingMessage", request)

    def subscribe(self, task_id: str) -> AsyncIterator[types.StreamResponse]:
        return self._events("SubscribeToTask", types.SubscribeToTaskRequest(id=task_id))

    async def cancel(self, task_id: str) -> types.Task:
        answer = await self.upstream.unary("CancelTask", types.CancelTaskRequest(id=task_id), self._call())
        assert isinstance(answer, types.Task)
        return answer

    async def aclose(self) -> None:
        await self.http.aclose()


async def open_peer(transport: str, agent_card_uri: str, *, timeout: float = 60.0) -> Peer:
    """The agent whose card is at ``agent_card_uri``, over the binding ``transport`` names.

    ``timeout`` bounds each call (a stream as a whole) and the card's fetch. The card's first
    interface of that binding for A2A 1.0 is used, else its first for 0.x (spoken in v0.3);
    :class:`errors.UnavailableError` names what the card offers when it has neither.
    """
    binding = binding_of(transport)
    card_url = card_url_for(agent_card_uri)
    http = httpx.AsyncClient(timeout=None)
    try:
        if binding == "GRPC":
            card = await fetch_card(card_url, client=http, timeout=timeout)
            await http.aclose()
            # from_card: the card's 1.x GRPC interfaces, else its 0.x ones over a2a.v1.A2AService
            return _GrpcPeer(A2AClient.from_card(card, timeout=timeout), timeout)
        upstream = await open_json_upstream(card_url, prefer=[binding], client=http, timeout=timeout)
        assert isinstance(upstream, JsonRpcUpstream | RestUpstream)
        return _JsonPeer(upstream, http, timeout)
    except BaseException:
        await http.aclose()
        raise
