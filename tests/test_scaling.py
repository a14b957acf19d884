"""Replicas behind one name need no affinity: a gRPC client spreading its calls over two replicas
of one agent (round robin, as over a headless Service's DNS) finds every task through either."""

from __future__ import annotations

import pytest
from google.protobuf.message import Message

from a2a_grpc import types
from a2a_grpc.agent import text_message
from a2a_grpc.client import A2AClient, ClientSettings
from a2a_grpc.reference_agent import ReferenceAgent
from a2a_grpc.service import CallContext, Interceptor, Method, UnaryCall
from a2a_grpc.tasks.redis_store import RedisTaskStore
from tests.conftest import serve, shutdown

pytestmark = pytest.mark.asyncio


class Counting(Interceptor):
    """How many calls this replica answered."""

    def __init__(self) -> None:
        self.calls = 0

    async def unary(
        self, method: Method, request: Message, context: CallContext, call_next: UnaryCall
    ) -> Message:
        self.calls += 1
        return await call_next(request, context)


async def test_round_robin_over_two_replicas_finds_every_task_through_either(redis_url: str) -> None:
    counters = [Counting(), Counting()]
    replicas = [
        await serve(ReferenceAgent(), RedisTaskStore(redis_url + "?prefix=echo"), interceptors=[c])
        for c in counters
    ]
    target = "ipv4:" + ",".join(r.server.address for r in replicas)
    client = A2AClient(target, settings=ClientSettings(load_balancing="round_robin", timeout=10))
    try:
        ids = []
        for i in range(20):
            reply = await client.send_message(types.SendMessageRequest(message=text_message(f"echo {i}")))
            assert reply.HasField("task")
            ids.append(reply.task.id)
        for task_id in ids:
            task = await client.get_task(task_id)
            assert task.status.state == types.TASK_STATE_COMPLETED
        listed = await client.list_tasks(types.ListTasksRequest(page_size=100))
        assert sorted(t.id for t in listed.tasks) == sorted(ids)
        # Both replicas answered: the channel spread the calls, and no task needed its own replica.
        assert all(c.calls >= 5 for c in counters), [c.calls for c in counters]
    finally:
        await client.close()
        for replica in replicas:
            await shutdown(replica)


async def test_a_load_balancing_policy_gRPC_does_not_know_is_refused() -> None:
    with pytest.raises(ValueError, match="load_balancing must be one of round_robin, pick_first"):
        ClientSettings(load_balancing="least_request_please")
