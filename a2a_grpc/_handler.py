"""The eleven A2A operations, independent of any binding.

Every front reaches them through the call seam (:mod:`a2a_grpc.service`): it decodes a request,
calls the operation of the same name with a :class:`~a2a_grpc.service.CallContext`, and encodes
the result or the :class:`~a2a_grpc.errors.A2AError` it raised. Each operation checks the call's
service parameters at its entry (:meth:`RequestHandler.check_call`: version, required
extensions), so no caller can reach one without the checks. Semantics follow the specification,
section 3 (operations) and 3.3.4 (capability checks).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from google.protobuf import json_format

from a2a_grpc import errors, types
from a2a_grpc._dedupe import repeats_for
from a2a_grpc._execution import Execution, Executions
from a2a_grpc._runs import Runs
from a2a_grpc._validation import (
    check_identifiers,
    invalid,
    require,
    validate_send,
    validate_state,
    validate_webhook_url,
    webhook_policy,
)
from a2a_grpc.agent import Agent, RequestContext, TaskUpdater, new_id, text_message
from a2a_grpc.observability.context import TASK_ID
from a2a_grpc.observability.metrics import TASKS_IN_FLIGHT, TaskMetrics
from a2a_grpc.security.authentication import owner_key, request_tenant, tenant_of
from a2a_grpc.security.delegation import SKILL_HEADER
from a2a_grpc.security.limits import Limits, MiB
from a2a_grpc.security.quota import Quotas
from a2a_grpc.security.redact import without_credentials
from a2a_grpc.security.shape import check_request
from a2a_grpc.security.shared import store_redis
from a2a_grpc.service import ABSENT_VERSION, SUPPORTED_VERSIONS, CallContext, version_supported
from a2a_grpc.tasks import INTERRUPTED_STATES, InvalidListRequestError, TaskStore, trim_task
from a2a_grpc.tasks.eventlog import EventLog, InMemoryEventLog
from a2a_grpc.tasks.lifecycle import SETTLED_STATES, TERMINAL_STATES
from a2a_grpc.tasks.registry import InMemoryRegistry, TaskRegistry
from a2a_grpc.tasks.run import DEFAULT_RETAIN_BYTES, TaskRun
from a2a_grpc.tasks.store import ANSWER_ROOM, PUSH_MAX_PAGE_SIZE, STORED, trim_task_in_place

if TYPE_CHECKING:
    from a2a_grpc.push import PushNotifier

__all__ = ["RequestHandler", "checked"]

log = logging.getLogger("a2a_grpc.handler")
DEFAULT_SEND_BYTES = 64 * MiB
"""The largest answer a RequestHandler assumes the transport sends, unless told (the server default)."""

_FOREIGN_WKT = re.compile(r"<class 'google\.protobuf\.(struct|timestamp|duration|wrappers)_pb2\.\w+'>")


def _hint(exc: BaseException) -> str:
    """A pointer for the agent author when a standard protobuf message was given to ours."""
    if isinstance(exc, TypeError) and _FOREIGN_WKT.search(str(exc)):
        return (
            " (a2a_grpc messages take a2a_grpc's own well-known types: build data parts with "
            "a2a_grpc.parts.data_part(...), values with a2a_grpc.parts.to_value(...), timestamps "
            "from a datetime; see docs/agents.md, 'Data and file parts')"
        )
    return ""


F = TypeVar("F", bound=Callable[..., Any])


def checked(operation: F) -> F:
    """An operation that checks the call (:meth:`RequestHandler.check_call`), the ids and tenants
    of its request (:func:`a2a_grpc._validation.check_identifiers`) and what it holds
    (:func:`a2a_grpc.security.shape.check_request`: parts, nesting) before anything else.

    The check runs when the operation is called, before its coroutine or generator exists, so a
    refused call raises where it is made.
    """

    # A plain function returning the operation's coroutine or async generator: no second frame
    # per call, and the same wrapper for both kinds.
    @functools.wraps(operation)
    def call_checked(self: RequestHandler, request: Any, call: CallContext) -> Any:
        self.check_call(call)
        check_identifiers(request)
        # The bridge in this process (front "http") checked the nesting on the JSON already.
        check_request(request, self.limits, nesting=call.front != "http")
        return operation(self, request, call)

    return cast(F, call_checked)


class RequestHandler:
    """Serves one agent: runs its executions, keeps its tasks, answers the A2A operations."""

    def __init__(
        self,
        agent: Agent,
        store: TaskStore,
        *,
        card: types.AgentCard | None = None,
        notifier: PushNotifier | None = None,
        events: EventLog | None = None,
        registry: TaskRegistry | None = None,
        retain_bytes: int = DEFAULT_RETAIN_BYTES,
        limits: Limits | None = None,
        quotas: Quotas | None = None,
        max_send_bytes: int = DEFAULT_SEND_BYTES,
        max_artifact_update_bytes: int | None = None,
    ) -> None:
        """``events``: where task events go (default: in memory, made durable by the store's
        ``event_sink`` if it has one); ``registry``: who runs which task (default: the store's
        ``registry``, else one for this process alone); ``quotas``: the per-principal counters
        (default: new ones from ``limits``; a server shares its own with its session host);
        ``max_send_bytes``: the largest answer the transport sends
        (``ServerSettings.max_send_message_bytes``); ``max_artifact_update_bytes``: the largest
        artifact update an agent may report (the server's ``max_send_message_bytes``)."""
        self.agent = agent
        self.store = store
        self.card = card if card is not None else agent.card
        self.notifier = notifier
        self.limits = limits if limits is not None else Limits()
        self.quotas = quotas if quotas is not None else Quotas(self.limits, store_redis(store))
        # What a ListTasks page's tasks may take at most, whatever its budget: an answer that can
        # be sent, with room for its other fields (a send limit set very low keeps half of it).
        self.max_answer_bytes = max_send_bytes - min(ANSWER_ROOM, max_send_bytes // 2)
        self._webhook_policy = webhook_policy(notifier)  # the notifier's, judged once
        if events is None:
            events = InMemoryEventLog(sink=getattr(store, "event_sink", None))
        if registry is None:
            registry = getattr(store, "registry", None) or InMemoryRegistry()
        self.events: EventLog = events
        self.registry: TaskRegistry = registry
        self.executions = Executions()
        self._jobs: set[asyncio.Task[None]] = set()
        self._cancelling: set[tuple[str, str]] = set()
        self._stopping = False
        caps = self.card.capabilities
        self._streaming = caps.streaming
        self._push = caps.push_notifications
        self._required_extensions = frozenset(e.uri for e in caps.extensions if e.required)
        self.runs = Runs(
            store,
            self.events,
            self.registry,
            notifier=notifier,
            push=self._push,
            retain_bytes=retain_bytes,
            stored=self.quotas.stored,
            max_history=self.limits.max_history_length,
            max_artifact_update_bytes=max_artifact_update_bytes,
        )
        self.task_metrics = TaskMetrics(self.card, TERMINAL_STATES)
        """``a2a_task_duration_seconds`` of the tasks created here, by the skill the card declares."""
        self.repeats = repeats_for(self.limits, store_redis(store))
        """Messages received lately, so that one sent again is not run twice (``a2a_grpc._dedupe``)."""

    # -- service parameters --------------------------------------------------------------------

    def check_call(self, call: CallContext) -> None:
        """VersionNotSupported / ExtensionSupportRequired, before any operation runs."""
        # Spec 3.6: an absent or empty A2A-Version means 0.3, which this implementation does not speak.
        version = call.version or ABSENT_VERSION
        if not version_supported(version):
            shown = errors.echo(version) if call.version else f"{ABSENT_VERSION!r} (no a2a-version was sent)"
            raise errors.VersionNotSupportedError(
                f"A2A version {shown} is not supported; this agent speaks " + ", ".join(SUPPORTED_VERSIONS),
                metadata={"supported_versions": ",".join(SUPPORTED_VERSIONS)},
            )
        missing = self._required_extensions - call.extensions if self._required_extensions else None
        if missing:
            names = ",".join(sorted(missing))
            raise errors.ExtensionSupportRequiredError(
                f"this agent requires extension(s) {names}: declare them in a2a-extensions",
                metadata={"extensions": names},
            )

    def _require_streaming(self) -> None:
        if not self._streaming:
            raise errors.UnsupportedOperationError("this agent does not support streaming")

    def _require_push(self) -> None:
        if not self._push:
            raise errors.PushNotificationNotSupportedError("this agent does not support push notifications")

    # -- runs ----------------------------------------------------------------------------------

    @staticmethod
    def _owner(call: CallContext, tenant: str) -> tuple[str, str]:
        """The tenant a call acts in, and the key of what it owns there (tasks, their push
        configs): the caller's principal's tasks in that tenant, no one else's
        (:func:`a2a_grpc.security.authentication.owner_key`)."""
        principal = call.principal
        if principal is None:  # no authentication: the tenant alone (every call asks; no calls)
            return tenant, tenant
        tenant = request_tenant(principal, tenant)
        return tenant, owner_key(principal, tenant)

    async def _create_task(
        self, execution: Execution, request: types.SendMessageRequest, key: str
    ) -> TaskRun:
        ctx = execution.context
        task = types.Task(id=ctx.task_id, context_id=ctx.context_id)
        task.status.state = types.TASK_STATE_SUBMITTED
        task.status.timestamp.FromNanoseconds(time.time_ns())
        task.history.append(ctx.message)
        run = self.runs.create(key, task)
        run.listeners.append(self.task_metrics.started(ctx.headers.get(SKILL_HEADER)))
        # Not awaited here: the save shares a transaction with the first events; whatever sends
        # the task to a client waits for it first (TaskRun.durable).
        saved = self.store.save(key, task)
        if saved is not STORED:
            run.created = saved
        if request.configuration.HasField("task_push_notification_config"):
            await self._attach_push_config(run, request)
        return run

    async def _attach_push_config(self, run: TaskRun, request: types.SendMessageRequest) -> None:
        """Register the webhook a SendMessage carries, for a new task or one it continues."""
        if not request.configuration.HasField("task_push_notification_config"):
            return
        config = types.TaskPushNotificationConfig()
        config.CopyFrom(request.configuration.task_push_notification_config)
        config.task_id, config.tenant = run.task.id, tenant_of(run.tenant)
        config.id = config.id or new_id()
        await self._check_push_room(run.tenant, run.task.id, config.id, run)
        await self.store.put_push_config(run.tenant, config)
        run.push_configs = [c for c in run.push_configs if c.id != config.id] + [config]

    async def _check_push_room(self, key: str, task_id: str, config_id: str, run: TaskRun | None) -> None:
        """Refuse one push config more than ``limits.max_push_configs_per_task`` allows; a config
        replacing one of the same id takes no more room. (Every config is a webhook delivered to on
        every update: unbounded, one caller could make the server send without end.)"""
        limit = self.limits.max_push_configs_per_task
        if run is not None and self.runs.push:  # a run that delivers holds all its task's configs
            held = {c.id for c in run.push_configs}
        else:
            held, token = set(), ""
            while True:
                page, token = await self.store.list_push_configs(key, task_id, PUSH_MAX_PAGE_SIZE, token)
                held.update(c.id for c in page)
                if not token or len(held) > limit:
                    break
        if len(held) >= limit and config_id not in held:
            raise errors.LimitExceededError(
                f"task {errors.echo(task_id)} already has {limit} push notification configs, "
                "the most max_push_configs_per_task allows",
                limit="max_push_configs_per_task",
                value=limit,
            )

    # -- SendMessage / SendStreamingMessage ----------------------------------------------------

    async def _start(
        self, request: types.SendMessageRequest, call: CallContext, subscribe: bool
    ) -> Execution:
        # Counted from here (nothing stored yet) until the execution's job is done, however it ends.
        release = self.quotas.start_task(call)
        try:
            return await self._begin(request, call, subscribe, release)
        except BaseException:
            release()
            raise

    async def _begin(
        self,
        request: types.SendMessageRequest,
        call: CallContext,
        subscribe: bool,
        release: Callable[[], None],
    ) -> Execution:
        validate_send(request, self._webhook_policy)
        if request.configuration.HasField("task_push_notification_config"):
            self._require_push()
        tenant, key = self._owner(call, request.tenant)
        message = request.message
        run: TaskRun | None = None
        before: types.Task | None = None
        if self._stopping:
            raise errors.UnavailableError("the server is stopping: it takes no new messages")
        hold: object | None = None
        if message.task_id:
            run = await self.runs.load(key, message.task_id)
            if run is None:
                raise errors.TaskNotFoundError(
                    f"task {errors.echo(message.task_id)} not found", metadata={"task_id": message.task_id}
                )
            if self.runs.replicated and not run.finished:  # claimed first: another replica may run it
                hold = object()
                run = await self._take_to_continue(run, hold)
        try:
            if run is not None:
                self._check_continuable(run, message)
                if hold is not None and any(m.message_id == message.message_id for m in run.task.history):
                    raise errors.UnsupportedOperationError(
                        f"message {errors.echo(message.message_id)} was delivered to task "
                        f"{errors.echo(run.task.id)} already (through another server)",
                        metadata={"task_id": run.task.id, "state": types.TaskState.Name(run.state)},
                    )
                message.context_id = run.task.context_id
                run.grow(message.ByteSize())  # it joins the history: refused first if that passes a bound
                before = types.Task()
                before.CopyFrom(run.task)
                run.remember(message)
            else:
                self.quotas.stored.admit(key, message.ByteSize())
                message.task_id = new_id()
                message.context_id = message.context_id or new_id()
            execution = self._prepare(request, call, subscribe, message, run, before, tenant, key)
        except BaseException:
            if run is not None and hold is None and run.finished:
                run.maybe_idle()  # loaded for this only, it may be: nothing will ever hold it
            raise
        finally:
            if hold is not None and run is not None:  # the execution holds the run from here
                run.release(hold)
        loop = execution.first.get_loop()
        if run is not None:
            try:
                await self._attach_push_config(run, request)
            except BaseException as exc:
                execution.finish(exc)
                raise
        job = loop.create_task(self._execute(execution))
        execution.job = job
        self._jobs.add(job)

        def done(job: asyncio.Task[None]) -> None:  # one callback for both: one less per message
            self._jobs.discard(job)
            release()

        job.add_done_callback(done)
        return execution

    def _prepare(
        self,
        request: types.SendMessageRequest,
        call: CallContext,
        subscribe: bool,
        message: types.Message,
        run: TaskRun | None,
        before: types.Task | None,
        tenant: str,
        key: str,
    ) -> Execution:
        # The logs' task_id from here on: the rest of the call, and the execution started below.
        TASK_ID.set(message.task_id)
        metadata = json_format.MessageToDict(request.metadata) if request.HasField("metadata") else {}
        context = RequestContext(
            message=message,
            task_id=message.task_id,
            context_id=message.context_id,
            task=before,
            tenant=tenant,
            metadata=metadata,
            extensions=call.extensions,
            headers=call.headers,
            configuration=request.configuration,
            streaming=subscribe,
            principal=call.principal,
        )

        async def create(execution: Execution) -> TaskRun:
            return await self._create_task(execution, request, key)

        # Attached to the run before anything awaits: a second message racing this one finds the
        # task busy (see _check_continuable).
        loop = asyncio.get_running_loop()
        return Execution(context, create, run, subscribe=subscribe, registry=self.executions, loop=loop)

    async def _take_to_continue(self, run: TaskRun, hold: object) -> TaskRun:
        """Replicas: claim the task for a message continuing it; busy (the same error as a task busy
        here) when another live replica holds it."""
        taken = await self.runs.take(run, hold)
        if taken is not None:
            if taken.state not in SETTLED_STATES and not self.executions.of(taken):
                # Claimed while SUBMITTED or WORKING with nothing running it here: its replica died.
                try:
                    await self._recover_one(taken)
                except BaseException:
                    taken.release(hold)
                    raise
            return taken
        found = await self.store.load(run.tenant, run.task.id)
        state = found[0].status.state if found is not None else run.state
        raise self._busy(run.task.id, state, elsewhere=True)

    @staticmethod
    def _busy(task_id: str, state: int, *, elsewhere: bool = False) -> errors.UnsupportedOperationError:
        name = types.TaskState.Name(state)
        where = " (another server runs it)" if elsewhere else ""
        return errors.UnsupportedOperationError(
            f"task {errors.echo(task_id)} is {name} and busy with an earlier message{where}: it accepts "
            "a new one when it asks for input (TASK_STATE_INPUT_REQUIRED or TASK_STATE_AUTH_REQUIRED)",
            metadata={"task_id": task_id, "state": name},
        )

    def _check_continuable(self, run: TaskRun, message: types.Message) -> None:
        """A message may continue a task only when the task waits for one.

        Terminal tasks take no more messages (spec 3.1.1). A task that is SUBMITTED or WORKING,
        or one whose agent is still handling the previous message, refuses it too, with the same
        typed error: a second execution next to the running one would race it for the task
        (and could finish the task under it). The agent asks for more by moving the task to
        INPUT_REQUIRED or AUTH_REQUIRED; then the next message is delivered.
        """
        task_id = run.task.id
        state = types.TaskState.Name(run.state)
        facts = {"task_id": task_id, "state": state}
        if run.finished:
            raise errors.UnsupportedOperationError(
                f"task {errors.echo(task_id)} is {state}: "
                "a task in a terminal state accepts no more messages",
                metadata=facts,
            )
        if run.state not in INTERRUPTED_STATES or self.executions.busy(run):
            raise self._busy(task_id, run.state)
        if message.context_id and message.context_id != run.task.context_id:
            raise invalid("message.context_id", f"does not match the context of task {errors.echo(task_id)}")

    async def _execute(self, execution: Execution, *, resume: bool = False) -> None:
        error: BaseException | None = None
        updater = TaskUpdater(execution)
        TASKS_IN_FLIGHT.inc()
        try:
            if resume:
                await self.agent.resume(execution.context, updater)
            else:
                await self.agent.execute(execution.context, updater)
        except asyncio.CancelledError:
            pass  # CancelTask (or shutdown) stopped it; the canceller sets the final state
        except Exception as exc:
            error = exc
            run = execution.run
            if run is not None and not run.finished:
                if not isinstance(exc, errors.A2AError):
                    log.exception("agent failed on task %s%s", run.task.id, _hint(exc))
                text = exc.message if isinstance(exc, errors.A2AError) else errors.INTERNAL_MESSAGE
                await run.fail_safely(text_message(text, task_id=run.task.id, context_id=run.task.context_id))
            elif hint := _hint(exc):  # the traceback is logged where the error is answered
                log.error("agent failed on a request%s", hint)
        else:
            run = execution.run
            if run is not None and run.task.status.state not in SETTLED_STATES:
                await self._abandoned(execution)
        finally:
            run = execution.run
            TASKS_IN_FLIGHT.dec()
            if run is not None and run.saved_seq < run.log.last:  # events since the last snapshot
                await run.save()
            execution.finish(error if execution.run is None else None)

    async def _abandoned(self, execution: Execution) -> None:
        """``execute`` returned: a task it leaves SUBMITTED or WORKING, that nothing else drives
        (no detached updater, no other execution), would look alive forever. It is failed, saying so."""
        run = execution.run
        if (
            run is None
            or run.state in SETTLED_STATES
            or execution.detached
            or self.executions.driven(run, besides=execution)
        ):
            return
        state = types.TaskState.Name(run.state)
        log.warning(
            "task %s: %s.execute returned leaving it %s without detaching its updater; failing the task",
            run.task.id,
            type(self.agent).__name__,
            state,
        )
        await run.fail_safely(
            text_message(
                f"the agent stopped working on this task without finishing it (it was {state})",
                task_id=run.task.id,
                context_id=run.task.context_id,
            )
        )

    @checked
    async def send_message(
        self, request: types.SendMessageRequest, call: CallContext
    ) -> types.SendMessageResponse:
        receipt = await self.repeats.receive(self._owner(call, request.tenant)[1], request.message)
        if receipt.earlier is not None:  # sent again: answered from the first receipt
            return await receipt.earlier.response(self, request, call)
        execution = await receipt.started(self._start(request, call, subscribe=False))
        first = await asyncio.shield(execution.first)
        if isinstance(first, types.Message):
            return types.SendMessageResponse(message=first)
        if not request.configuration.return_immediately:
            await asyncio.shield(execution.settled)
        config = request.configuration
        history = config.history_length if config.HasField("history_length") else None
        response = types.SendMessageResponse()
        response.task.CopyFrom(first.task)  # one copy, trimmed in place
        seq = first.seq
        trim_task_in_place(response.task, history, include_artifacts=True)
        if not first.is_durable(seq):
            await first.durable(seq)  # nothing reaches the caller that a crash could take back
        return response

    @checked
    async def send_streaming_message(
        self, request: types.SendMessageRequest, call: CallContext
    ) -> AsyncIterator[types.StreamResponse]:
        self._require_streaming()
        receipt = await self.repeats.receive(self._owner(call, request.tenant)[1], request.message)
        if receipt.earlier is not None:  # sent again: answered from the first receipt
            async for event in receipt.earlier.events(self, request, call):
                yield event
            return
        execution = await receipt.started(self._start(request, call, subscribe=True))
        first = await asyncio.shield(execution.first)
        if isinstance(first, types.Message):
            yield types.StreamResponse(message=first)
            return
        sub = execution.first_subscription
        assert sub is not None
        cursor = call.cursor
        try:
            snapshot = await sub.start()
            if cursor is None:
                yield types.StreamResponse(task=snapshot)
                async for event in sub.events():
                    yield event
                    if event.HasField("status_update") and event.status_update.status.state in SETTLED_STATES:
                        return
                return
            cursor.seq = sub.reader.pos  # the last event the snapshot includes
            yield types.StreamResponse(task=snapshot)
            async for cursor.seq, event in sub.numbered():
                yield event
                if event.HasField("status_update") and event.status_update.status.state in SETTLED_STATES:
                    return
        finally:
            sub.close()

    # -- tasks ---------------------------------------------------------------------------------

    async def _existing(self, tenant: str, task_id: str, field_name: str = "id") -> types.Task:
        require(task_id, field_name)
        TASK_ID.set(task_id)  # the call's task, for its log lines (each call runs in its own task)
        run = self.runs.get(tenant, task_id)
        task = run.task if run is not None else await self.store.get(tenant, task_id)
        if task is None:
            raise errors.TaskNotFoundError(
                f"task {errors.echo(task_id)} not found", metadata={"task_id": task_id}
            )
        return task

    async def _require_run(self, tenant: str, task_id: str) -> TaskRun:
        require(task_id, "id")
        TASK_ID.set(task_id)
        run = await self.runs.load(tenant, task_id)
        if run is None:
            raise errors.TaskNotFoundError(
                f"task {errors.echo(task_id)} not found", metadata={"task_id": task_id}
            )
        return run

    @checked
    async def get_task(self, request: types.GetTaskRequest, call: CallContext) -> types.Task:
        if request.HasField("history_length") and request.history_length < 0:
            raise invalid("history_length", "must not be negative")
        history = request.history_length if request.HasField("history_length") else None
        _, key = self._owner(call, request.tenant)
        TASK_ID.set(request.id)
        run = self.runs.get(key, request.id)
        # Live: the snapshot as of now, once that much is stored (with replicas, not one waiting
        # for input: another replica may have continued it since).
        if (
            run is not None
            and run.owned
            and (run.state not in INTERRUPTED_STATES or not self.runs.replicated)
        ):
            seq, task = run.seq, trim_task(run.task, history)
            await run.durable(seq)
            return task
        if self.runs.replicated:  # another replica may run it: the store's, not a copy that may lag
            require(request.id, "id")
            found = await self.runs.read(key, request.id)
            if found is None:
                raise errors.TaskNotFoundError(
                    f"task {errors.echo(request.id)} not found", metadata={"task_id": request.id}
                )
            trim_task_in_place(found, history, include_artifacts=True)
            return found
        return trim_task(await self._existing(key, request.id), history)

    @checked
    async def list_tasks(self, request: types.ListTasksRequest, call: CallContext) -> types.ListTasksResponse:
        validate_state(request.status, "status")
        try:
            return await self.store.list(
                self._owner(call, request.tenant)[1],
                request,
                max_bytes=self.limits.max_list_page_bytes,
                max_answer_bytes=self.max_answer_bytes,
            )
        except InvalidListRequestError as exc:
            raise invalid(exc.field, str(exc)) from None

    @checked
    async def cancel_task(self, request: types.CancelTaskRequest, call: CallContext) -> types.Task:
        run = await self._require_run(self._owner(call, request.tenant)[1], request.id)
        if run.finished:
            run.maybe_idle()  # loaded for this only, it may be: a finished task is read from the store
            raise self._not_cancelable(run)
        if self.runs.replicated and not self.executions.of(run):
            return await self._cancel_replicated(run, call)
        if not self.executions.of(run) and run.state not in SETTLED_STATES:
            owner = await self.registry.owner_of(run.tenant, run.task.id)
            if owner is not None and owner != self.registry.owner:
                task = await self._cancel_elsewhere(run, owner)
                run.maybe_idle()  # nothing here holds it: a copy kept would only go stale
                return task
        await self._cancel(run, call)
        return trim_task(run.task, None)

    @staticmethod
    def _not_cancelable(run: TaskRun) -> errors.TaskNotCancelableError:
        return errors.TaskNotCancelableError(
            f"task {errors.echo(run.task.id)} is {types.TaskState.Name(run.state)}: "
            "only unfinished tasks can be canceled",
            metadata={"task_id": run.task.id},
        )

    async def _cancel_replicated(self, run: TaskRun, call: CallContext) -> types.Task:
        """Replicas, a task nothing here runs: claimed, it is canceled here (it was at rest, or its
        replica died); held by another live replica, that one is signalled."""
        hold = object()
        taken = await self.runs.take(run, hold)
        if taken is None:
            owner = await self.registry.owner_of(run.tenant, run.task.id)
            task = await self._cancel_elsewhere(run, owner or "(none alive)")
            run.maybe_idle()
            return task
        try:
            if taken.finished:
                raise self._not_cancelable(taken)
            await self._cancel(taken, call)
            return trim_task(taken.task, None)
        finally:
            taken.release(hold)

    async def _cancel(self, run: TaskRun, call: CallContext | None = None) -> None:
        """Cancel a task this process holds: the agent's ``cancel``, then every execution stops."""
        running = [e for e in self.executions.of(run) if e.job is not None]
        last = run.task.history[-1] if run.task.history else types.Message()
        context = RequestContext(
            message=last,
            task_id=run.task.id,
            context_id=run.task.context_id,
            task=trim_task(run.task, None),
            tenant=tenant_of(run.tenant),
            extensions=call.extensions if call is not None else frozenset(),
            headers=call.headers if call is not None else {},
            principal=call.principal if call is not None else None,
        )
        execution = Execution(context, None, run, subscribe=False)
        try:
            await self.agent.cancel(context, TaskUpdater(execution))
        finally:
            for other in running:
                assert other.job is not None
                other.job.cancel()
            if not run.finished:
                await run.set_status(types.TASK_STATE_CANCELED, None)
            execution.finish(None)

    async def _cancel_elsewhere(self, run: TaskRun, owner: str) -> types.Task:
        """The task runs in another process: signal it there, and wait (a while) to see it end."""
        tenant, task_id = run.tenant, run.task.id
        if await self.registry.signal_cancel(tenant, task_id):
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.registry.lease_seconds
            while loop.time() < deadline:
                found = await self.store.load(tenant, task_id)
                if found is not None and found[0].status.state in TERMINAL_STATES:
                    return trim_task(found[0], None)
                await asyncio.sleep(0.05)
        found = await self.store.load(tenant, task_id)
        task = found[0] if found is not None else run.task
        log.info("task %s: cancel signalled to its owner %s, not done yet", task_id, owner)
        return trim_task(task, None)

    @checked
    async def subscribe_to_task(
        self, request: types.SubscribeToTaskRequest, call: CallContext
    ) -> AsyncIterator[types.StreamResponse]:
        self._require_streaming()
        key = self._owner(call, request.tenant)[1]
        kept = self.runs.get(key, request.id)
        run = await self._require_run(key, request.id)
        if not run.owned and run is kept:  # a copy kept here may lag the store: not one loaded now
            run = await self.runs.refresh(run)
        if run.finished:
            run.maybe_idle()
            raise errors.UnsupportedOperationError(
                f"task {errors.echo(request.id)} is {types.TaskState.Name(run.state)}: "
                "subscriptions are for tasks that are not finished"
            )
        sub = run.subscribe()
        cursor = call.cursor
        try:
            snapshot = await sub.start()
            if cursor is None:
                yield types.StreamResponse(task=snapshot)
                async for event in sub.events():
                    yield event
                return
            cursor.seq = sub.reader.pos  # the last event the snapshot includes
            yield types.StreamResponse(task=snapshot)
            async for cursor.seq, event in sub.numbered():
                yield event
        finally:
            sub.close()

    # -- push notification configs -------------------------------------------------------------

    @checked
    async def create_task_push_notification_config(
        self, request: types.TaskPushNotificationConfig, call: CallContext
    ) -> types.TaskPushNotificationConfig:
        self._require_push()
        tenant, key = self._owner(call, request.tenant)
        await self._existing(key, request.task_id, "task_id")
        validate_webhook_url(request.url, "url", self._webhook_policy)
        config = types.TaskPushNotificationConfig()
        config.CopyFrom(request)
        config.id = config.id or new_id()
        config.tenant = tenant
        await self._check_push_room(key, request.task_id, config.id, self.runs.get(key, request.task_id))
        await self.store.put_push_config(key, config)
        run = self.runs.get(key, request.task_id)
        if run is not None:
            run.push_configs = [c for c in run.push_configs if c.id != config.id] + [config]
        return without_credentials(config)

    @checked
    async def get_task_push_notification_config(
        self, request: types.GetTaskPushNotificationConfigRequest, call: CallContext
    ) -> types.TaskPushNotificationConfig:
        self._require_push()
        require(request.task_id, "task_id")
        _, key = self._owner(call, request.tenant)
        await self._existing(key, request.task_id, "task_id")
        require(request.id, "id")
        config = await self.store.get_push_config(key, request.task_id, request.id)
        if config is None:
            raise errors.TaskNotFoundError(
                f"push notification config {errors.echo(request.id)} "
                f"of task {errors.echo(request.task_id)} not found",
                metadata={"task_id": request.task_id, "config_id": request.id},
            )
        return without_credentials(config)

    @checked
    async def list_task_push_notification_configs(
        self, request: types.ListTaskPushNotificationConfigsRequest, call: CallContext
    ) -> types.ListTaskPushNotificationConfigsResponse:
        self._require_push()
        _, key = self._owner(call, request.tenant)
        await self._existing(key, request.task_id, "task_id")
        if request.page_size < 0:
            raise invalid("page_size", "must not be negative")
        try:
            configs, token = await self.store.list_push_configs(
                key, request.task_id, request.page_size, request.page_token
            )
        except InvalidListRequestError as exc:
            raise invalid(exc.field, str(exc)) from None
        page = types.ListTaskPushNotificationConfigsResponse(configs=configs, next_page_token=token)
        return without_credentials(page)

    @checked
    async def delete_task_push_notification_config(
        self, request: types.DeleteTaskPushNotificationConfigRequest, call: CallContext
    ) -> None:
        self._require_push()
        _, key = self._owner(call, request.tenant)
        await self._existing(key, request.task_id, "task_id")
        require(request.id, "id")
        await self.store.delete_push_config(key, request.task_id, request.id)
        run = self.runs.get(key, request.task_id)
        if run is not None:
            run.push_configs = [c for c in run.push_configs if c.id != request.id]

    # -- cards ---------------------------------------------------------------------------------

    @checked
    async def get_extended_agent_card(
        self, request: types.GetExtendedAgentCardRequest, call: CallContext
    ) -> types.AgentCard:
        if not self.card.capabilities.extended_agent_card:
            raise errors.UnsupportedOperationError("this agent has no extended agent card")
        if call.principal is None:  # spec 13.3: only for authenticated callers
            raise errors.UnauthenticatedError(
                "the extended agent card is only for authenticated callers, and this server "
                "authenticates none (it runs without authentication)"
            )
        extended = self.agent.extended_card
        if extended is None:
            raise errors.ExtendedAgentCardNotConfiguredError(
                "this agent declares an extended agent card but has none configured"
            )
        card = types.AgentCard()
        card.CopyFrom(extended)
        if not card.supported_interfaces:
            card.supported_interfaces.extend(self.card.supported_interfaces)
        return card

    # -- start and stop --------------------------------------------------------------------------

    async def start(self) -> None:
        """Recover what the store says is running but nothing runs (see :meth:`recover`), then keep
        this process's lease alive and take cancel signals from other processes; with replicas,
        recover again every lease or so (a replica may die any time)."""
        await self.recover()
        self.runs.start(self._cancel_signalled, self.recover)

    async def _cancel_signalled(self, tenant: str, task_id: str) -> None:
        run = self.runs.get(tenant, task_id)
        key = (tenant, task_id)
        # A signal may come twice (pushed, then seen again at the renewal): one cancel runs.
        if run is not None and not run.finished and run.owned and key not in self._cancelling:
            self._cancelling.add(key)
            token = TASK_ID.set(task_id)  # the lease task goes on to other tasks' signals
            try:
                log.info("task %s: canceled on a signal from another process", task_id)
                await self._cancel(run)
            finally:
                TASK_ID.reset(token)
                self._cancelling.discard(key)

    async def recover(self) -> list[str]:
        """Give every orphan a truthful end: the SUBMITTED or WORKING tasks of the store that no
        live owner holds (the server stopped or died meanwhile). A ``resumable`` agent resumes
        each (:meth:`Agent.resume`); otherwise the task is failed, saying why. With replicas each is
        claimed first, so that of several replicas finding it, one ends it. The ids recovered."""
        recovered = []
        outer = TASK_ID.set(None)
        try:
            for tenant, task_id in await self.registry.orphans():
                run = await self.runs.load(tenant, task_id)
                if run is None or self.executions.of(run):  # gone, or running here after all
                    continue
                TASK_ID.set(task_id)  # the resumed execution's too (it copies the ids)
                hold = object()  # held here while its end is recorded
                taken = await self.runs.take(run, hold)
                if taken is None:
                    continue
                try:
                    if taken.state not in SETTLED_STATES and not self.executions.of(taken):
                        await self._recover_one(taken)
                        recovered.append(task_id)
                finally:
                    taken.release(hold)
        finally:
            TASK_ID.reset(outer)  # recover runs in the task that starts the server, or the sweep's
        return recovered

    async def _recover_one(self, run: TaskRun) -> None:
        """An orphan held here: resumed by a resumable agent, else failed, saying why."""
        task_id = run.task.id
        if self.agent.resumable:
            log.warning("task %s was %s when its server stopped: resuming it", task_id, _name(run.state))
            self._resume(run)
            return
        log.warning("task %s was %s when its server stopped: failing it", task_id, _name(run.state))
        await run.fail_safely(
            text_message(
                f"the server running this task stopped while it was {_name(run.state)}; "
                "nothing runs it any more",
                task_id=task_id,
                context_id=run.task.context_id,
            )
        )

    def _resume(self, run: TaskRun) -> None:
        user = [m for m in run.task.history if m.role == types.ROLE_USER]
        context = RequestContext(
            message=user[-1] if user else types.Message(),
            task_id=run.task.id,
            context_id=run.task.context_id,
            task=trim_task(run.task, None),
            tenant=tenant_of(run.tenant),
            resumed=True,
        )
        execution = Execution(context, None, run, subscribe=False, registry=self.executions)
        job = asyncio.get_running_loop().create_task(self._execute(execution, resume=True))
        execution.job = job
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)

    def stop_accepting(self) -> None:
        """Refuse new messages from now on (UnavailableError); the rest of the API still answers."""
        self._stopping = True

    async def aclose(self, grace: float = 5.0) -> None:
        """Stop: refuse new messages, let running executions finish for up to ``grace`` seconds,
        then give every task still running a truthful end. A resumable agent's tasks are left to
        be resumed by the next start; every other one is failed, saying the server stopped, so
        that every reader receives a final status and ends."""
        self.stop_accepting()
        jobs = list(self._jobs)
        if jobs:
            await asyncio.wait(jobs, timeout=grace)
        unfinished = {e.run for e in self.executions.running() if e.run is not None and not e.run.finished}
        for job in self._jobs:
            job.cancel()
        if self._jobs:
            await asyncio.wait(list(self._jobs), timeout=grace)
        for run in unfinished:
            if run.finished:
                continue
            if self.agent.resumable:
                await run.save()  # everything up to now, for the next start to resume from
                continue
            await run.fail_safely(
                text_message(
                    f"the server stopped while this task was {_name(run.state)}",
                    task_id=run.task.id,
                    context_id=run.task.context_id,
                )
            )
        await self.runs.stop()
        try:
            await self.agent.aclose()
        except Exception:  # the server stops anyway; what the agent failed to release is logged
            log.exception("the agent's aclose failed")


def _name(state: int) -> str:
    return types.TaskState.Name(state)
