"""a2a_grpc.testing: an agent served for a test, and stopped whatever happens."""

from __future__ import annotations

import pytest

from a2a_grpc import errors, types
from a2a_grpc.agent import Agent, RequestContext, TaskUpdater
from a2a_grpc.client import A2AClient
from a2a_grpc.server import ServerSettings
from a2a_grpc.tasks import InMemoryTaskStore
from a2a_grpc.testing import serving

pytestmark = pytest.mark.asyncio


class Shout(Agent):
    card = types.AgentCard(name="shout")

    async def execute(self, ctx: RequestContext, updater: TaskUpdater) -> None:
        await updater.artifact([types.Part(text=ctx.text.upper())], name="shout")
        await updater.complete()


async def test_serving_gives_a_client_of_the_agent_on_a_free_port() -> None:
    async with serving(Shout(), settings=ServerSettings(port=50051, stream_window=8)) as served:
        assert served.address.startswith("127.0.0.1:")
        assert served.server.port not in (0, 50051)  # port 0 whatever the settings said
        assert served.server.settings.stream_window == 8
        reply = await served.client.send_message(A2AClient.message_request("hi"))
        assert reply.task.artifacts[0].parts[0].text == "HI"
        assert await served.store.get("", reply.task.id) is not None
    with pytest.raises(errors.UnavailableError):  # stopped when the block ended
        async with A2AClient(served.address, timeout=0.5) as late:
            await late.get_task(reply.task.id)


async def test_serving_stops_the_server_when_the_test_fails_and_leaves_your_store_open() -> None:
    store = InMemoryTaskStore()
    seen: list[str] = []

    async def failing_test() -> None:
        async with serving(Shout(), store) as served:
            seen.append(served.address)
            raise RuntimeError("the test failed")

    with pytest.raises(RuntimeError, match="the test failed"):
        await failing_test()
    (address,) = seen
    with pytest.raises(errors.UnavailableError):
        async with A2AClient(address, timeout=0.5) as late:
            await late.get_task("x")
    assert await store.get("", "x") is None  # still open: it is yours
    await store.close()
