"""Card drift: a refreshed card that changes or removes a skill a caller relies on is reported (a
metric and a log line naming the agent, the skill and the change), once per new card; a pinned
caller keeps deciding on the card it negotiated and keeps working while the agent serves; an
unchanged refresh reports nothing. Over gRPC (A2AClient(cards=)) with an agent restarted with a
changed skill, and through the registry's lookups."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import REGISTRY

from a2a_grpc import types
from a2a_grpc.agent import Agent, RequestContext, TaskUpdater
from a2a_grpc.client import A2AClient
from a2a_grpc.mesh.drift import CHANGES, CardBook, card_etag
from a2a_grpc.mesh.registration import Registration
from a2a_grpc.mesh.registry import Registry, RegistrySettings
from a2a_grpc.server import A2AServer, ServerSettings
from a2a_grpc.tasks import InMemoryTaskStore
from tests.conftest import serve, shutdown

pytestmark = pytest.mark.asyncio


def skill(sid: str, **fields: object) -> types.AgentSkill:
    base: dict[str, object] = {"id": sid, "name": sid, "description": f"does {sid}", "tags": ["t"]}
    return types.AgentSkill(**(base | fields))  # type: ignore[arg-type]


def card(
    *skills: types.AgentSkill, version: str = "1", inputs: tuple[str, ...] = ("text/plain",)
) -> types.AgentCard:
    return types.AgentCard(
        name="translator",
        description="translates",
        version=version,
        default_input_modes=list(inputs),
        default_output_modes=["text/plain"],
        skills=list(skills),
    )


V1 = card(skill("translate"), skill("summarize"), skill("detect"))


def drifted(change: str) -> float:
    return REGISTRY.get_sample_value("a2a_card_drift_total", {"change": change}) or 0.0


def counts() -> dict[str, float]:
    return {c: drifted(c) for c in CHANGES}


async def test_each_kind_of_change_to_a_skill_relied_on_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    cases = [
        (card(skill("translate"), skill("detect")), "summarize", "skill_removed"),
        (
            card(skill("translate", input_modes=["application/json"]), skill("summarize"), skill("detect")),
            "translate",
            "input_changed",
        ),
        (
            card(skill("translate", output_modes=["audio/wav"]), skill("summarize"), skill("detect")),
            "translate",
            "output_changed",
        ),
        (
            card(
                skill(
                    "translate",
                    security_requirements=[types.SecurityRequirement(schemes={"k": types.StringList()})],
                ),
                skill("summarize"),
                skill("detect"),
            ),
            "translate",
            "security_changed",
        ),
        (
            card(skill("translate", description="now in verse"), skill("summarize"), skill("detect")),
            "translate",
            "skill_changed",
        ),
    ]
    for new, skill_id, change in cases:
        book = CardBook(relies_on=["translate", "summarize"])
        assert book.observe(V1) == []
        before = counts()
        with caplog.at_level(logging.WARNING, "a2a_grpc.mesh"):
            caplog.clear()
            (drift,) = book.observe(new)
        assert (drift.agent, drift.skill, drift.change, drift.etag) == (
            "translator",
            skill_id,
            change,
            card_etag(new),
        )
        assert counts() == before | {change: before[change] + 1}
        (line,) = caplog.messages
        assert "'translator'" in line
        assert repr(skill_id) in line
        assert change in line


async def test_changed_default_input_modes_change_the_skills_that_inherit_them() -> None:
    book = CardBook(relies_on=["translate", "detect"])
    book.observe(card(skill("translate"), skill("detect", input_modes=["text/plain"])))
    drifts = book.observe(
        card(skill("translate"), skill("detect", input_modes=["text/plain"]), inputs=("image/png",))
    )
    assert [(d.skill, d.change) for d in drifts] == [("translate", "input_changed")]


async def test_an_unchanged_refresh_or_a_skill_not_relied_on_reports_nothing() -> None:
    book = CardBook(relies_on=["translate"])
    before = counts()
    assert book.observe(V1) == []
    assert (
        book.observe(card(skill("translate"), skill("summarize"), skill("detect"))) == []
    )  # equal: same ETag
    assert book.observe(card(skill("translate"), version="2")) == []  # dropped skills nobody relies on
    assert counts() == before


async def test_every_skill_of_the_first_card_is_relied_on_when_none_are_declared() -> None:
    book = CardBook()
    book.observe(V1)
    drifts = book.observe(card(skill("detect")))
    assert sorted((d.skill, d.change) for d in drifts) == [
        ("summarize", "skill_removed"),
        ("translate", "skill_removed"),
    ]


async def test_a_rolling_deploy_is_reported_once() -> None:
    book = CardBook(relies_on=["summarize"])
    v2 = card(skill("translate"), skill("detect"), version="2")
    book.observe(V1)
    assert len(book.observe(v2)) == 1
    for _ in range(3):  # replicas not redeployed yet answer the old card, redeployed ones the new
        assert book.observe(V1) == []
        assert book.observe(v2) == []
    assert book.card("translator") == v2


async def test_pinned_keeps_the_first_card_unpinned_adopts_the_new_one() -> None:
    v2 = card(skill("translate"), version="2")
    pinned, unpinned = CardBook(relies_on=["summarize"], pin=True), CardBook(relies_on=["summarize"])
    for book in (pinned, unpinned):
        book.observe(V1)
        assert [d.change for d in book.observe(v2)] == ["skill_removed"]
        assert book.latest("translator") == v2
    assert pinned.card("translator") == V1
    assert pinned.etag("translator") == card_etag(V1)
    assert pinned.offers("translator", "summarize")
    assert unpinned.card("translator") == v2
    assert not unpinned.offers("translator", "summarize")
    # A pinned book compares every new card with the one it negotiated: v3 still lacks summarize.
    v3 = card(skill("translate"), version="3")
    assert [d.change for d in pinned.observe(v3)] == ["skill_removed"]
    assert unpinned.observe(v3) == []  # compared with v2, which it adopted
    pinned.adopt("translator")
    assert pinned.card("translator") == v3
    assert pinned.card("nobody") is None
    assert not pinned.offers("nobody", "x")


async def test_the_book_is_bounded() -> None:
    book = CardBook(max_agents=2)
    for name in ("a", "b", "c"):
        book.observe(types.AgentCard(name=name))
    assert len(book) == 2
    assert book.card("a") is None
    with pytest.raises(ValueError, match="max_agents"):
        CardBook(max_agents=0)


class Translator(Agent):
    def __init__(self, agent_card: types.AgentCard) -> None:
        self.card = agent_card

    async def execute(self, context: RequestContext, updater: TaskUpdater) -> None:
        await updater.artifact([types.Part(text=context.text[::-1])], name="translated")
        await updater.complete()


async def test_an_agent_restarted_with_a_changed_skill_is_reported_and_a_pinned_client_keeps_working() -> (
    None
):
    first = await serve(Translator(V1))
    port = first.server.port
    book = CardBook(relies_on=["translate", "summarize"], pin=True)
    client = A2AClient(first.server.address, timeout=10.0, cards=book)
    try:
        served_v1 = await client.get_agent_card()
        assert await client.get_agent_card() == served_v1  # an unchanged refresh
        assert book.card("translator") == served_v1
        reply = await client.send_message(A2AClient.text_request("hello"))
        assert reply.task.status.state == types.TASK_STATE_COMPLETED
        await shutdown(first)
        # Redeployed on the same address: translate now takes JSON, summarize is gone.
        v2 = card(skill("translate", input_modes=["application/json"]), skill("detect"), version="2")
        server = A2AServer(Translator(v2), InMemoryTaskStore(), ServerSettings(host="127.0.0.1", port=port))
        await server.start()
        try:
            before = counts()
            await client.wait_ready(timeout=15)
            served_v2 = await client.get_agent_card()
            assert served_v2.version == "2"
            assert counts() == before | {
                "input_changed": before["input_changed"] + 1,
                "skill_removed": before["skill_removed"] + 1,
            }
            assert await client.get_agent_card() == served_v2
            assert counts()["input_changed"] == before["input_changed"] + 1  # reported once
            # Pinned: decisions still on the card negotiated; calls go on while the agent serves.
            assert book.card("translator") == served_v1
            assert book.offers("translator", "summarize")
            reply = await client.send_message(A2AClient.text_request("still here"))
            assert reply.task.status.state == types.TASK_STATE_COMPLETED
            assert reply.task.artifacts[0].parts[0].text == "ereh llits"
        finally:
            await server.stop(grace=1.0)
    finally:
        await client.close()


async def test_registry_lookups_report_drift_in_the_cards_they_read(redis_url: str) -> None:
    book = CardBook(relies_on=["summarize"])
    registry = Registry(RegistrySettings(url=redis_url, cache_seconds=60), cards=book)
    try:
        registration = Registration(registry, V1, ["10.0.0.1:1"])
        await registration.start()
        assert [e.name for e in await registry.replicas("translate")] == ["translator"]
        assert book.card("translator") == V1
        before = drifted("skill_removed")
        registration.update(card(skill("translate"), version="2"))
        assert await registration.beat() == "uploaded"  # the registration emptied the cache
        (entry,) = await registry.replicas("translate")
        assert entry.card.version == "2"
        assert drifted("skill_removed") == before + 1
        assert book.card("translator") == entry.card
        await registration.stop()
    finally:
        await registry.aclose()


async def test_a_client_made_from_a_card_starts_its_book_with_that_card() -> None:
    served = await serve(Translator(V1))
    book = CardBook(relies_on=["summarize"], pin=True)
    try:
        first = await served.client.get_agent_card()
        client = A2AClient.from_card(first, cards=book, timeout=10.0)
        try:
            assert book.card("translator") == first
            assert await client.get_agent_card() == first
            assert book.etag("translator") == card_etag(first)
        finally:
            await client.close()
    finally:
        await shutdown(served)
