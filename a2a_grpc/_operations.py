"""The eleven A2A operations as client methods, written once for every client of ours: the
unary and streaming client (:class:`a2a_grpc.client.A2AClient`) and the session binding's
(:class:`a2a_grpc.session.client.Session`). A client provides ``tenant`` and the two ways of
making a call, ``_call_unary`` and ``_call_stream``; everything here is built on them, through
``_unary`` and ``_stream``, which make every call continue the trace of the call being served, if
any (with spans on, as a CLIENT span of its own: docs/tracing.md)."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

from google.protobuf.message import Message

from a2a_grpc import types
from a2a_grpc.agent import new_id
from a2a_grpc.observability import trace

__all__ = ["ClientOperations", "task_id_of"]


def task_id_of(event: types.StreamResponse) -> str:
    """The task a stream event is about: the task's id, or an update's ``task_id``; "" for a
    direct reply (a Message)."""
    kind = event.WhichOneof("payload")
    if kind == "task":
        return event.task.id
    if kind in ("status_update", "artifact_update"):
        return str(getattr(event, kind).task_id)
    return ""


class ClientOperations(abc.ABC):
    """The A2A operations over ``_unary`` and ``_stream`` (see the module doc)."""

    tenant: str = ""

    async def _unary(
        self,
        name: str,
        request: Message,
        timeout: float | None,
        metadata: Sequence[tuple[str, str | bytes]] | None,
    ) -> Any:
        """A unary call of A2A method ``name`` (:meth:`_call_unary`), in the current trace."""
        return await trace.traced_unary(
            trace.span_name(name),
            trace.parent_of(metadata),
            lambda sent: self._call_unary(name, request, timeout, trace.carry(metadata or (), sent)),
            self._trace_peer(),
        )

    def _stream(
        self,
        name: str,
        request: Message,
        timeout: float | None,
        metadata: Sequence[tuple[str, str | bytes]] | None,
    ) -> AsyncIterator[types.StreamResponse]:
        """A streaming call of A2A method ``name`` (:meth:`_call_stream`), in the current trace."""
        return trace.traced_stream(
            trace.span_name(name),
            trace.parent_of(metadata),
            lambda sent: self._call_stream(name, request, timeout, trace.carry(metadata or (), sent)),
            self._trace_peer(),
        )

    def _trace_peer(self) -> str:
        """The peer a CLIENT span names ("": unknown)."""
        return ""

    @abc.abstractmethod
    async def _call_unary(
        self,
        name: str,
        request: Message,
        timeout: float | None,
        metadata: Sequence[tuple[str, str | bytes]] | None,
    ) -> Any:
        """Make a unary call of A2A method ``name``; its response, or the typed error."""

    @abc.abstractmethod
    def _call_stream(
        self,
        name: str,
        request: Message,
        timeout: float | None,
        metadata: Sequence[tuple[str, str | bytes]] | None,
    ) -> AsyncIterator[types.StreamResponse]:
        """Make a streaming call of A2A method ``name``; its events, or the typed error."""

    # -- convenience ---------------------------------------------------------------------------

    @staticmethod
    def message_request(
        parts: Iterable[types.Part] | str,
        *,
        task_id: str = "",
        context_id: str = "",
        return_immediately: bool = False,
        history_length: int | None = None,
        accepted_output_modes: Iterable[str] = (),
        tenant: str = "",
    ) -> types.SendMessageRequest:
        """A SendMessageRequest carrying one user message: ``parts`` (a string is one text part).

        ``task_id`` continues a task (one waiting for input); ``context_id`` groups a new task
        with earlier ones. The other options are the request's ``configuration``.
        """
        request = types.SendMessageRequest(tenant=tenant)
        message = request.message
        message.message_id, message.role = new_id(), types.ROLE_USER
        message.task_id, message.context_id = task_id, context_id
        if isinstance(parts, str):
            message.parts.add(text=parts)
        else:
            message.parts.extend(parts)
        config = request.configuration
        config.return_immediately = return_immediately
        config.accepted_output_modes.extend(accepted_output_modes)
        if history_length is not None:
            config.history_length = history_length
        return request

    @staticmethod
    def text_request(
        text: str,
        *,
        task_id: str = "",
        context_id: str = "",
        return_immediately: bool = False,
        tenant: str = "",
    ) -> types.SendMessageRequest:
        """A SendMessageRequest carrying one user text part (see :meth:`message_request`)."""
        return ClientOperations.message_request(
            text, task_id=task_id, context_id=context_id, return_immediately=return_immediately, tenant=tenant
        )

    # -- the eleven RPCs -----------------------------------------------------------------------

    async def send_message(
        self,
        request: types.SendMessageRequest,
        *,
        timeout: float | None = None,
        metadata: Sequence[tuple[str, str | bytes]] | None = None,
    ) -> types.SendMessageResponse:
        response: types.SendMessageResponse = await self._unary("SendMessage", request, timeout, metadata)
        return response

    def send_streaming_message(
        self,
        request: types.SendMessageRequest,
        *,
        timeout: float | None = None,
        metadata: Sequence[tuple[str, str | bytes]] | None = None,
    ) -> AsyncIterator[types.StreamResponse]:
        """Stream the task's events; ``timeout`` bounds the whole stream (None: no deadline)."""
        return self._stream("SendStreamingMessage", request, timeout, metadata)

    async def get_task(
        self,
        task_id: str,
        *,
        history_length: int | None = None,
        tenant: str = "",
        timeout: float | None = None,
        metadata: Sequence[tuple[str, str | bytes]] | None = None,
    ) -> types.Task:
        request = types.GetTaskRequest(id=task_id, tenant=tenant)
        if history_length is not None:
            request.history_length = history_length
        task: types.Task = await self._unary("GetTask", request, timeout, metadata)
        return task

    async def list_tasks(
        self,
        request: types.ListTasksRequest | None = None,
        *,
        timeout: float | None = None,
        metadata: Sequence[tuple[str, str | bytes]] | None = None,
    ) -> types.ListTasksResponse:
        response: types.ListTasksResponse = await self._unary(
            "ListTasks", request or types.ListTasksRequest(), timeout, metadata
        )
        return response

    async def cancel_task(
        self,
        task_id: str,
        *,
        tenant: str = "",
        timeout: float | None = None,
        metadata: Sequence[tuple[str, str | bytes]] | None = None,
    ) -> types.Task:
        task: types.Task = await self._unary(
            "CancelTask", types.CancelTaskRequest(id=task_id, tenant=tenant), timeout, metadata
        )
        return task

    def subscribe_to_task(
        self,
        task_id: str,
        *,
        tenant: str = "",
        timeout: float | None = None,
        metadata: Sequence[tuple[str, str | bytes]] | None = None,
    ) -> AsyncIterator[types.StreamResponse]:
        return self._stream(
            "SubscribeToTask", types.SubscribeToTaskRequest(id=task_id, tenant=tenant), timeout, metadata
        )

    async def create_task_push_notification_config(
        self,
        config: types.TaskPushNotificationConfig,
        *,
        timeout: float | None = None,
        metadata: Sequence[tuple[str, str | bytes]] | None = None,
    ) -> types.TaskPushNotificationConfig:
        created: types.TaskPushNotificationConfig = await self._unary(
            "CreateTaskPushNotificationConfig", config, timeout, metadata
        )
        return created

    async def get_task_push_notification_config(
        self,
        task_id: str,
        config_id: str,
        *,
        tenant: str = "",
        timeout: float | None = None,
        metadata: Sequence[tuple[str, str | bytes]] | None = None,
    ) -> types.TaskPushNotificationConfig:
        request = types.GetTaskPushNotificationConfigRequest(task_id=task_id, id=config_id, tenant=tenant)
        config: types.TaskPushNotificationConfig = await self._unary(
            "GetTaskPushNotificationConfig", request, timeout, metadata
        )
        return config

    async def list_task_push_notification_configs(
        self,
        task_id: str,
        *,
        page_size: int = 0,
        page_token: str = "",
        tenant: str = "",
        timeout: float | None = None,
        metadata: Sequence[tuple[str, str | bytes]] | None = None,
    ) -> types.ListTaskPushNotificationConfigsResponse:
        request = types.ListTaskPushNotificationConfigsRequest(
            task_id=task_id, page_size=page_size, page_token=page_token, tenant=tenant
        )
        response: types.ListTaskPushNotificationConfigsResponse = await self._unary(
            "ListTaskPushNotificationConfigs", request, timeout, metadata
        )
        return response

    async def delete_task_push_notification_config(
        self,
        task_id: str,
        config_id: str,
        *,
        tenant: str = "",
        timeout: float | None = None,
        metadata: Sequence[tuple[str, str | bytes]] | None = None,
    ) -> None:
        request = types.DeleteTaskPushNotificationConfigRequest(task_id=task_id, id=config_id, tenant=tenant)
        await self._unary("DeleteTaskPushNotificationConfig", request, timeout, metadata)

    async def get_extended_agent_card(
        self,
        *,
        tenant: str = "",
        timeout: float | None = None,
        metadata: Sequence[tuple[str, str | bytes]] | None = None,
    ) -> types.AgentCard:
        card: types.AgentCard = await self._unary(
            "GetExtendedAgentCard", types.GetExtendedAgentCardRequest(tenant=tenant), timeout, metadata
        )
        return card
