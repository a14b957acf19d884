"""Task ownership and tenant isolation: a task belongs to the principal and tenant that created it.

Two principals on one agent: whatever binding and whatever spelling of the tenant the second one
uses (gRPC's field, JSON-RPC's ``params.tenant``, the HTTP+JSON path, a query parameter, a body
member), it can neither get, list, subscribe to, cancel, message, nor attach, read, list or delete
a webhook of the first one's task: the task is "not found", exactly as a task that does not exist
(spec 3.3.2, 13.1: no existence leak). A credential bound to a tenant reaches no other tenant.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import pytest_asyncio

from a2a_grpc import errors, types
from a2a_grpc.client import A2AClient
from a2a_grpc.reference_agent import ReferenceAgent
from tests.bridge_peers import BINDINGS, Binding, Stack, collect, open_binding, serve_stack
from tests.test_auth import KEYS, api_key, authentication

ASYNC = pytest.mark.asyncio(loop_scope="module")
HOOK = "https://hooks.mesh.test/a2a"  # never delivered to: the tasks stay input-required
TENANTS = ("", "team-1")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack() -> AsyncIterator[Stack]:
    async with serve_stack(ReferenceAgent(), authentication=authentication()) as served:
        yield served


async def alices_task(stack: Stack, tenant: str) -> tuple[str, str]:
    """A task of alice's in ``tenant`` that waits for input (so it can be continued, subscribed
    to and canceled), with a webhook: ``(task id, config id)``."""
    async with open_binding("grpc", stack, headers=api_key("alice")) as alice:
        response = await alice.send_message(A2AClient.text_request("ask", tenant=tenant))
        task_id = response.task.id
        assert response.task.status.state == types.TASK_STATE_INPUT_REQUIRED
        config = types.TaskPushNotificationConfig(task_id=task_id, url=HOOK, tenant=tenant)
        config.authentication.scheme = "Bearer"
        config.authentication.credentials = "alices-webhook-secret"
        created = await alice.create_task_push_notification_config(config)
    return task_id, created.id


def _not_found(outcome: BaseException | None) -> None:
    assert isinstance(outcome, errors.TaskNotFoundError), repr(outcome)


async def _refused(attempt: Callable[[], Awaitable[Any]]) -> BaseException | None:
    try:
        await attempt()
    except errors.A2AError as exc:
        return exc
    return None


def attempts(
    bob: Binding, task_id: str, config_id: str, tenant: str
) -> dict[str, Callable[[], Awaitable[Any]]]:
    """Everything bob could try on alice's task, by operation."""
    follow_up = A2AClient.text_request("done", task_id=task_id, tenant=tenant)

    async def subscribe() -> None:
        await collect(bob.subscribe_to_task(types.SubscribeToTaskRequest(id=task_id, tenant=tenant)))

    async def stream_message() -> None:
        await collect(bob.send_streaming_message(follow_up))

    config = types.TaskPushNotificationConfig(task_id=task_id, url=HOOK, tenant=tenant)
    return {
        "GetTask": lambda: bob.get_task(types.GetTaskRequest(id=task_id, tenant=tenant)),
        "CancelTask": lambda: bob.cancel_task(types.CancelTaskRequest(id=task_id, tenant=tenant)),
        "SubscribeToTask": subscribe,
        "SendMessage": lambda: bob.send_message(follow_up),
        "SendStreamingMessage": stream_message,
        "CreateTaskPushNotificationConfig": lambda: bob.create_task_push_notification_config(config),
        "GetTaskPushNotificationConfig": lambda: bob.get_task_push_notification_config(
            types.GetTaskPushNotificationConfigRequest(task_id=task_id, id=config_id, tenant=tenant)
        ),
        "ListTaskPushNotificationConfigs": lambda: bob.list_task_push_notification_configs(
            types.ListTaskPushNotificationConfigsRequest(task_id=task_id, tenant=tenant)
        ),
        "DeleteTaskPushNotificationConfig": lambda: bob.delete_task_push_notification_config(
            types.DeleteTaskPushNotificationConfigRequest(task_id=task_id, id=config_id, tenant=tenant)
        ),
    }


@ASYNC
@pytest.mark.parametrize("tenant", TENANTS)
@pytest.mark.parametrize("binding", BINDINGS)
async def test_another_principals_task_is_not_found_by_any_operation(
    stack: Stack, binding: str, tenant: str
) -> None:
    task_id, config_id = await alices_task(stack, tenant)
    async with open_binding(binding, stack, headers=api_key("bob")) as bob:
        for name, attempt in attempts(bob, task_id, config_id, tenant).items():
            outcome = await _refused(attempt)
            assert isinstance(outcome, errors.TaskNotFoundError), (name, outcome)
            # Word for word what a task that does not exist gets: nothing tells the two apart.
            assert outcome.message == f"task {task_id!r} not found", (name, outcome.message)
        listed = await bob.list_tasks(types.ListTasksRequest(tenant=tenant))
        assert task_id not in [t.id for t in listed.tasks]
    # Nothing bob did reached the task: it still waits for alice, with alice's webhook.
    async with open_binding(binding, stack, headers=api_key("alice")) as alice:
        task = await alice.get_task(types.GetTaskRequest(id=task_id, tenant=tenant))
        assert task.status.state == types.TASK_STATE_INPUT_REQUIRED
        configs = await alice.list_task_push_notification_configs(
            types.ListTaskPushNotificationConfigsRequest(task_id=task_id, tenant=tenant)
        )
        assert [c.id for c in configs.configs] == [config_id]
        assert task_id in [
            t.id for t in (await alice.list_tasks(types.ListTasksRequest(tenant=tenant))).tasks
        ]
        # And alice herself can do all of it (the refusals above were not for some other reason).
        finished = await alice.send_message(A2AClient.text_request("done", task_id=task_id, tenant=tenant))
        assert finished.task.status.state == types.TASK_STATE_COMPLETED


@ASYNC
async def test_the_same_principal_by_another_scheme_is_the_same_owner(stack: Stack) -> None:
    """Ownership follows the principal, whichever scheme proved it: here two API keys of one name
    would be a configuration error, so the JWT ``sub`` is the check: dave's token sees dave's tasks."""
    from tests.test_auth import bearer, token

    async with open_binding("rest", stack, headers=bearer(token())) as dave:
        created = await dave.send_message(A2AClient.text_request("ask"))
    async with open_binding(
        "jsonrpc", stack, headers=bearer(token(key=_ed_key(), kid="ed-1", alg="EdDSA"))
    ) as again:
        assert (await again.get_task(types.GetTaskRequest(id=created.task.id))).id == created.task.id


def _ed_key() -> Any:
    from tests.test_auth import ED_KEY

    return ED_KEY


# --- the other spellings of a tenant over HTTP+JSON: query parameters and body members -------------------


@ASYNC
async def test_a_tenant_in_the_query_or_the_body_reaches_no_one_elses_task(stack: Stack) -> None:
    task_id, _ = await alices_task(stack, "team-1")
    headers = {"A2A-Version": "1.0", **api_key("bob")}
    async with httpx.AsyncClient(base_url=stack.url, headers=headers, timeout=10) as http:
        answers = [
            await http.get(f"/tasks/{task_id}", params={"tenant": "team-1"}),
            await http.get("/tasks", params={"tenant": "team-1"}),
            await http.post(f"/tasks/{task_id}:cancel", json={"tenant": "team-1"}),
            await http.post(f"/team-1/tasks/{task_id}:cancel", json={}),
            await http.get(f"/team-1/tasks/{task_id}:subscribe"),
            await http.get(f"/tasks/{task_id}/pushNotificationConfigs", params={"tenant": "team-1"}),
        ]
        rpc = await http.post(
            "/",
            json={
                "jsonrpc": "2.0",
                "id": 1,
                "method": "GetTask",
                "params": {"id": task_id, "tenant": "team-1"},
            },
        )
    listed, others = answers[1], [a for i, a in enumerate(answers) if i != 1]
    assert listed.status_code == 200
    assert task_id not in [t["id"] for t in listed.json().get("tasks", [])]
    for answer in others:
        assert answer.status_code == 404, (answer.request.url, answer.status_code, answer.text)
    assert rpc.json()["error"]["code"] == -32001


@ASYNC
@pytest.mark.parametrize(
    ("path", "query", "body"),
    [
        ("/team-1/tasks", {"tenant": "team-2"}, None),
        ("/team-1/tasks/x:cancel", {}, {"tenant": "team-2"}),
    ],
)
async def test_a_tenant_field_never_overrides_the_route(
    stack: Stack, path: str, query: Any, body: Any
) -> None:
    headers = {"A2A-Version": "1.0", **api_key("alice")}
    async with httpx.AsyncClient(base_url=stack.url, headers=headers, timeout=10) as http:
        answer = await (http.post(path, json=body) if body is not None else http.get(path, params=query))
    assert answer.status_code == 400, answer.text
    assert "differs from the path" in answer.text


# --- a credential bound to a tenant ------------------------------------------------------------------------


@ASYNC
@pytest.mark.parametrize("binding", BINDINGS)
async def test_a_credential_bound_to_a_tenant_reaches_no_other(stack: Stack, binding: str) -> None:
    async with open_binding(binding, stack, headers=api_key("carol")) as carol:  # carol's key: tenant acme
        with pytest.raises(errors.PermissionDeniedError, match="another tenant") as refused:
            await carol.list_tasks(types.ListTasksRequest(tenant="globex"))
        if binding != "grpc":
            assert carol.last_error is not None
            # HTTP+JSON: 403; JSON-RPC answers its errors with 200 (only a 401 is an HTTP status).
            assert carol.last_error.http_status == (403 if binding == "rest" else 200)
        # No tenant named: the credential's. Named, it must be the credential's.
        created = await carol.send_message(A2AClient.text_request("ask"))
        again = await carol.get_task(types.GetTaskRequest(id=created.task.id, tenant="acme"))
        assert again.id == created.task.id
    assert refused.value.grpc_code.name == "PERMISSION_DENIED"
    # alice in tenant acme (her key binds no tenant) does not see carol's task there.
    async with open_binding(binding, stack, headers=api_key("alice")) as alice:
        with pytest.raises(errors.TaskNotFoundError):
            await alice.get_task(types.GetTaskRequest(id=created.task.id, tenant="acme"))


@ASYNC
async def test_the_agent_is_told_who_sent_the_message(stack: Stack) -> None:
    seen: list[Any] = []

    class Recorder(ReferenceAgent):
        async def execute(self, context: Any, updater: Any) -> None:
            seen.append((context.principal, context.tenant))
            await super().execute(context, updater)

    async with (
        serve_stack(Recorder(), authentication=authentication()) as other,
        open_binding("jsonrpc", other, headers=api_key("carol")) as carol,
    ):
        await carol.send_message(A2AClient.text_request("echo hi"))
    assert len(seen) == 1
    principal, tenant = seen[0]
    assert (principal.id, principal.scheme, principal.tenant, tenant) == ("carol", "apiKey", "acme", "acme")
    assert KEYS["carol"] not in repr(principal)


@ASYNC
async def test_without_authentication_everyone_is_the_same_nobody() -> None:
    """The explicit "no authentication" mode: every caller shares the tasks of a tenant."""
    async with (
        serve_stack(ReferenceAgent()) as open_stack,
        open_binding("grpc", open_stack) as one,
        open_binding("rest", open_stack) as two,
    ):
        created = await one.send_message(A2AClient.text_request("ask"))
        assert (await two.get_task(types.GetTaskRequest(id=created.task.id))).id == created.task.id
        canceled = await two.cancel_task(types.CancelTaskRequest(id=created.task.id))
        assert canceled.status.state == types.TASK_STATE_CANCELED
