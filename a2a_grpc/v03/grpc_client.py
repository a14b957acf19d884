"""Our client operations over the v0.3 gRPC service (``a2a.v1.A2AService``), for agents that speak
only A2A v0.3.

:func:`v03_calls` gives, per v1.0 operation name (the keys of :data:`a2a_grpc.service.METHODS`), a
call with the signature of a grpc multi-callable (``call(request, timeout=, metadata=)``): it
converts the v1.0 request to its v0.3 form (:mod:`a2a_grpc.v03.requests`), calls the v0.3 RPC with
the metadata ``a2a-version: 0.3`` (and ``a2a-extensions`` mirrored as ``x-a2a-extensions``, the
v0.3 header), and converts the answer, or each stream event, back to v1.0. So
:class:`a2a_grpc.client.A2AClient` keeps its retries, deadlines, breakers and tracing, and only
reads a failed call with :func:`a2a_grpc.v03.errors.from_grpc_error_v03`.

What the peer sends is checked: bytes that are not the v0.3 message, or a message that does not
convert (an empty payload, an unknown state ...), are :class:`InvalidAgentResponseError` naming the
RPC, never InvalidParamsError (that is for what our own request cannot say in v0.3). ListTasks has
no v0.3 counterpart: :class:`UnsupportedOperationError`, without a call. ``history_length = 0``
(v1.0 "no history") cannot be said in v0.3: the history of the answer is dropped here instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import empty_pb2, message_factory
from google.protobuf.message import DecodeError, Message

from a2a_grpc import errors, types
from a2a_grpc.v03 import types as v03
from a2a_grpc.v03.card import V03_VERSION, to_v10_agent_card
from a2a_grpc.v03.convert import to_v10_send_response, to_v10_stream_response, to_v10_task
from a2a_grpc.v03.requests import (
    to_v03_cancel_task_request,
    to_v03_create_push_config_request,
    to_v03_delete_push_config_request,
    to_v03_get_agent_card_request,
    to_v03_get_push_config_request,
    to_v03_get_task_request,
    to_v03_list_push_configs_request,
    to_v03_send_request,
    to_v03_subscribe_request,
    to_v10_list_push_configs_response,
    to_v10_task_push_config,
)

__all__ = ["V03_OPERATIONS", "V03Operation", "keep_history_as_asked", "v03_calls", "v03_metadata"]

Metadata = Sequence[tuple[str, str | bytes]]


@dataclass(frozen=True, slots=True)
class V03Operation:
    """One v1.0 operation as the v0.3 gRPC service has it."""

    rpc: str
    """The v0.3 RPC name (``TaskSubscription`` for SubscribeToTask)."""
    encode: Callable[[Any], Message]
    """v1.0 request -> v0.3 request (InvalidParamsError: our request cannot be said in v0.3)."""
    decode: Callable[[Any], Message]
    """v0.3 answer (or one stream event) -> v1.0 (InvalidParamsError on a bad answer: rethrown as
    InvalidAgentResponseError)."""

    @property
    def streaming(self) -> bool:
        return bool(v03.A2A_SERVICE.methods_by_name[self.rpc].server_streaming)

    @property
    def answer(self) -> type[Message]:
        """The v0.3 response (or event) class."""
        output = v03.A2A_SERVICE.methods_by_name[self.rpc].output_type
        return message_factory.GetMessageClass(output)


def _empty(_: Message) -> empty_pb2.Empty:
    return empty_pb2.Empty()


V03_OPERATIONS: dict[str, V03Operation] = {
    "SendMessage": V03Operation("SendMessage", to_v03_send_request, to_v10_send_response),
    "SendStreamingMessage": V03Operation("SendStreamingMessage", to_v03_send_request, to_v10_stream_response),
    "GetTask": V03Operation("GetTask", to_v03_get_task_request, to_v10_task),
    "CancelTask": V03Operation("CancelTask", to_v03_cancel_task_request, to_v10_task),
    "SubscribeToTask": V03Operation("TaskSubscription", to_v03_subscribe_request, to_v10_stream_response),
    "CreateTaskPushNotificationConfig": V03Operation(
        "CreateTaskPushNotificationConfig", to_v03_create_push_config_request, to_v10_task_push_config
    ),
    "GetTaskPushNotificationConfig": V03Operation(
        "GetTaskPushNotificationConfig", to_v03_get_push_config_request, to_v10_task_push_config
    ),
    "ListTaskPushNotificationConfigs": V03Operation(
        "ListTaskPushNotificationConfig", to_v03_list_push_configs_request, to_v10_list_push_configs_response
    ),
    "DeleteTaskPushNotificationConfig": V03Operation(
        "DeleteTaskPushNotificationConfig", to_v03_delete_push_config_request, _empty
    ),
    "GetExtendedAgentCard": V03Operation("GetAgentCard", to_v03_get_agent_card_request, to_v10_agent_card),
}
"""Every v1.0 operation v0.3 has, by its v1.0 name (ListTasks has none)."""


def v03_metadata(metadata: Metadata) -> tuple[tuple[str, str | bytes], ...]:
    """``metadata`` as a v0.3 agent reads it: ``a2a-version`` is ``0.3``, and the extensions are
    named under both headers (``a2a-extensions`` and v0.3's ``x-a2a-extensions``)."""
    out: list[tuple[str, str | bytes]] = [("a2a-version", V03_VERSION)]
    for key, value in metadata:
        if key == "a2a-version":
            continue
        out.append((key, value))
        if key == "a2a-extensions":
            out.append(("x-a2a-extensions", value))
    return tuple(out)


def _wanted_no_history(request: Message) -> bool:
    """Whether a v1.0 request asked for no history (``history_length = 0``), which v0.3 cannot say."""
    holder = request.configuration if isinstance(request, types.SendMessageRequest) else request
    if not isinstance(holder, (types.SendMessageConfiguration, types.GetTaskRequest)):
        return False
    return holder.HasField("history_length") and holder.history_length == 0


def keep_history_as_asked(request: Message, answer: Message) -> Message:
    """``answer`` without its task's history if ``request`` asked for none (``history_length = 0``,
    which a v0.3 agent reads as "all": it is sent unset, and the history dropped here)."""
    if _wanted_no_history(request):
        task = answer.task if isinstance(answer, types.SendMessageResponse) else answer
        if isinstance(task, types.Task):
            del task.history[:]
    return answer


class _Translator:
    """The conversions of one operation, with the peer's mistakes named as its own."""

    def __init__(self, name: str, operation: V03Operation) -> None:
        self.name = name
        self.operation = operation
        self._answer = operation.answer

    def request(self, request: Message) -> Message:
        return self.operation.encode(request)

    def answer(self, raw: bytes, what: str) -> Message:
        try:
            message = self._answer.FromString(raw)
        except DecodeError:
            kind = self._answer.DESCRIPTOR.full_name
            raise errors.InvalidAgentResponseError(
                f"{self.name}: the v0.3 agent sent {what} that is not an {kind}"
            ) from None
        try:
            return self.operation.decode(message)
        except errors.InvalidParamsError as exc:
            raise errors.InvalidAgentResponseError(
                f"{self.name}: the v0.3 agent sent {what} that has no v1.0 form: {exc.message}",
                field_violations=exc.field_violations,
            ) from None


def _identity(data: bytes) -> bytes:
    return data


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


class _Unary:
    def __init__(self, translator: _Translator, rpc: Any) -> None:
        self._translator = translator
        self._rpc = rpc

    async def __call__(self, request: Message, *, timeout: float | None, metadata: Metadata) -> Message:
        sent = self._translator.request(request)
        raw = await self._rpc(sent, timeout=timeout, metadata=v03_metadata(metadata))
        return keep_history_as_asked(request, self._translator.answer(raw, "an answer"))


class _Stream:
    """A stream call: converts each event; the v0.3 call is made on the first read (so a request
    that cannot be said in v0.3 fails inside the client's loop), and :meth:`cancel` ends it."""

    def __init__(
        self, translator: _Translator, rpc: Any, request: Message, timeout: float | None, metadata: Metadata
    ) -> None:
        self._translator = translator
        self._rpc = rpc
        self._request = request
        self._timeout = timeout
        self._metadata = metadata
        self._call: Any = None

    def __aiter__(self) -> AsyncIterator[Message]:
        return self._events()

    async def _events(self) -> AsyncIterator[Message]:
        sent = self._translator.request(self._request)
        self._call = self._rpc(sent, timeout=self._timeout, metadata=v03_metadata(self._metadata))
        async for raw in self._call:
            yield self._translator.answer(raw, "an event")

    def cancel(self) -> bool:
        return bool(self._call.cancel()) if self._call is not None else False


class _StreamFactory:
    def __init__(self, translator: _Translator, rpc: Any) -> None:
        self._translator = translator
        self._rpc = rpc

    def __call__(self, request: Message, *, timeout: float | None, metadata: Metadata) -> _Stream:
        return _Stream(self._translator, self._rpc, request, timeout, metadata)


async def _no_list_tasks(request: Message, *, timeout: float | None, metadata: Metadata) -> Message:
    del request, timeout, metadata
    raise errors.UnsupportedOperationError(
        "ListTasks: A2A v0.3 has no such operation, and this agent speaks only v0.3"
    )


def v03_calls(channel: grpc.aio.Channel) -> dict[str, Any]:
    """A call per v1.0 operation name over ``channel``'s ``a2a.v1.A2AService`` (see the module doc)."""
    calls: dict[str, Any] = {"ListTasks": _no_list_tasks}
    service = v03.A2A_SERVICE.full_name
    for name, operation in V03_OPERATIONS.items():
        translator = _Translator(name, operation)
        path = f"/{service}/{operation.rpc}"
        if operation.streaming:
            rpc = channel.unary_stream(path, request_serializer=_serialize, response_deserializer=_identity)
            calls[name] = _StreamFactory(translator, rpc)
        else:
            rpc = channel.unary_unary(path, request_serializer=_serialize, response_deserializer=_identity)
            calls[name] = _Unary(translator, rpc)
    return calls
