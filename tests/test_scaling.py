"""Replicas behind one name need no affinity: a gRPC client spreading its calls over two replicas
of one agent (round robin, as over a headless Service's DNS) finds every task through either."""

from __future__ import annotations

import pytest
from google.protobuf.message import Message

from a2a_grpc import types
from a2a_grpc.agent import text_message
from a2a_grpc.client import A2AClient, ClientSettings
from a2a_grpc.reference_agent import ReferenceAgent
from a2a_grpc.server import A2AServer, ServerSettings
from a2a_grpc.service import CallContext, Interceptor, Method, UnaryCall
from a2a_grpc.tasks.redis_store import RedisTaskStore
from tests.conftest import Served, serve, shutdown

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


async def test_processes_sharing_a_port_are_each_reached_at_a_port_of_their_own(redis_url: str) -> None:
    """``serve --workers``: the shared port reaches whichever process the kernel picks, so each also
    listens on its own port, the address other replicas forward a session to its home at."""
    counters = [Counting(), Counting()]
    first = await serve(
        ReferenceAgent(), RedisTaskStore(redis_url), interceptors=[counters[0]], reuse_port=True
    )
    shared = ServerSettings(
        host="127.0.0.1", port=first.server.port, reuse_port=True, interceptors=[counters[1]]
    )
    server = A2AServer(ReferenceAgent(), RedisTaskStore(redis_url), shared)
    await server.start()
    second = Served(server, A2AClient(server.address, timeout=10.0), server.agent)
    replicas = [first, second]
    try:
        assert second.server.port == first.server.port
        own = [r.server.own_port for r in replicas]
        assert 0 not in own
        assert len({*own, first.server.port}) == 3
        for i, replica in enumerate(replicas):
            assert replica.server.replica_address == f"127.0.0.1:{own[i]}"
            before = [c.calls for c in counters]
            async with A2AClient(replica.server.replica_address, timeout=10) as direct:
                for _ in range(5):
                    await direct.list_tasks(types.ListTasksRequest(page_size=1))
            assert counters[i].calls - before[i] == 5  # all of them reached this process
            assert counters[1 - i].calls == before[1 - i]
    finally:
        for replica in replicas:
            await shutdown(replica)


async def test_an_advertised_address_wins_and_no_own_port_is_opened(redis_url: str) -> None:
    replica = await serve(
        ReferenceAgent(), RedisTaskStore(redis_url), reuse_port=True, advertise_address="10.1.2.3:50051"
    )
    try:
        assert replica.server.own_port == 0
        assert replica.server.replica_address == "10.1.2.3:50051"
    finally:
        await shutdown(replica)
