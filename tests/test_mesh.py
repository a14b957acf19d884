"""The mesh end to end: replicas found in the capability registry (a real Redis), routed by the
consistent-hash ring, with an unwell replica skipped and a departed one's contexts moved."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from a2a_grpc import errors, mesh, types
from a2a_grpc.mesh.registry import Registry, RegistrySettings
from a2a_grpc.mesh.routing import NoReplicaError, Router

pytestmark = pytest.mark.asyncio

ADDRESSES = [f"10.0.0.{i}:50051" for i in range(1, 4)]


def card(skills: tuple[str, ...] = ("summarize",)) -> types.AgentCard:
    c = types.AgentCard(name="summarizer", description="summarizes", version="1.0.0")
    for skill in skills:
        c.skills.add(id=skill, name=skill, description=skill, tags=["t"])
    return c


@pytest_asyncio.fixture
async def registry(redis_url: str) -> AsyncIterator[Registry]:
    reg = Registry(RegistrySettings(url=redis_url, cache_seconds=0))
    try:
        for address in ADDRESSES:
            await reg.register(card(), [address])
        yield reg
    finally:
        await reg.aclose()


async def test_the_registry_is_the_routers_source_and_a_context_sticks(registry: Registry) -> None:
    router = Router(registry)
    contexts = [f"ctx-{i}" for i in range(600)]
    first = {c: await router.route("summarize", c) for c in contexts}
    assert set(first.values()) == set(ADDRESSES)  # every replica takes some contexts
    assert {c: await router.route("summarize", c) for c in contexts} == first
    with pytest.raises(NoReplicaError) as caught:
        await router.route("translate", "ctx-1")  # nobody registered it
    assert isinstance(caught.value, errors.UnavailableError)


async def test_a_replica_that_leaves_the_registry_gives_up_only_its_own_contexts(registry: Registry) -> None:
    router = Router(registry)
    contexts = [f"ctx-{i}" for i in range(600)]
    before = {c: await router.route("summarize", c) for c in contexts}
    gone = ADDRESSES[0]
    await registry.deregister("summarizer", gone, ["summarize"])
    after = {c: await router.route("summarize", c) for c in contexts}
    moved = {c for c in contexts if after[c] != before[c]}
    assert moved == {c for c in contexts if before[c] == gone}  # only the departed replica's
    assert gone not in after.values()


async def test_an_unwell_replica_is_skipped_for_a_registered_one_offering_the_skill(
    registry: Registry,
) -> None:
    router = Router(registry)
    home = await router.route("summarize", "ctx-7")
    breaker = router.breaker(home)
    while breaker.state.name != "OPEN":  # bounded by the policy's failure threshold
        breaker.admit()
        breaker.record(errors.UnavailableError("down"))
    elsewhere = await router.route("summarize", "ctx-7")
    assert elsewhere != home
    assert elsewhere in ADDRESSES


async def test_the_mesh_package_names_its_parts() -> None:
    for name in ("Registry", "RegistrySettings", "Registration", "CardBook", "Router", "HashRing"):
        assert hasattr(mesh, name), name
