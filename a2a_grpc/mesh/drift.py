"""Card drift: noticing that an agent's refreshed card no longer offers what a caller relies on.

A caller declares the skills it uses (:class:`CardBook`'s ``relies_on``) and shows the book every
card it fetches (:meth:`CardBook.observe`): ``A2AClient(cards=book).get_agent_card()`` and
``Registry(cards=book)``'s lookups do it for it. The first card seen of an agent is the one the
caller negotiated against. When a later card differs (another :func:`card_etag`), the skills
relied on are compared, and each change is reported once per new card: a log line on the
``a2a_grpc.mesh`` logger (WARNING) naming the agent, the skill and the change, and the counter
``a2a_card_drift_total{change}``, the change being one of :data:`CHANGES`:

=================== ===========================================================================
``skill_removed``   the skill is no longer on the card
``input_changed``   the media types it accepts (its ``input_modes``, else the card's defaults)
``output_changed``  the media types it produces (``output_modes``, else the card's defaults)
``security_changed`` the security requirements of the skill
``skill_changed``   anything else of the skill: name, description, tags, examples
=================== ===========================================================================

A2A's AgentSkill carries no input schema: its input modes are the input contract, so a changed
schema shows as ``input_changed`` when the agent publishes it as a media type.

**Pinning.** A pinned book (``pin=True``) keeps the card it first had for its decisions
(:meth:`CardBook.card`, :meth:`CardBook.offers`: routing, validation) while the agent serves on;
calls go on as before, and a skill the agent dropped fails at the agent with its own typed error.
An unpinned book adopts each new card. :meth:`CardBook.adopt` moves a pinned agent to its latest
card explicitly (after a redeploy the caller has checked, say).

The ETag of a card fetched over gRPC is :func:`card_etag`, a digest of its deterministic
serialization (the discovery service sends none); the registry names cards by the same digest.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client import Counter

from a2a_grpc import types

__all__ = ["CARD_DRIFT", "CHANGES", "CardBook", "Drift", "card_etag"]

log = logging.getLogger("a2a_grpc.mesh")

CHANGES = ("skill_removed", "input_changed", "output_changed", "security_changed", "skill_changed")
"""The values of the ``change`` label of ``a2a_card_drift_total`` (the module doc says what each is)."""

CARD_DRIFT = Counter(
    "a2a_card_drift",
    "Changes to a skill a caller relies on, seen in an agent's refreshed card, by kind of change.",
    ["change"],
)
_DRIFT = {change: CARD_DRIFT.labels(change) for change in CHANGES}
_SEEN_PER_AGENT = 16  # card versions remembered per agent, so a rolling deploy reports once


def card_etag(card: types.AgentCard) -> str:
    """A stable ETag of ``card``: the SHA-256 of its deterministic serialization, 32 hex digits."""
    return hashlib.sha256(card.SerializeToString(deterministic=True)).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Drift:
    """One change to a skill relied on: ``agent``'s card ``etag`` changed ``skill`` by ``change``."""

    agent: str
    skill: str
    change: str
    etag: str


def _changes(old: types.AgentCard, new: types.AgentCard, skill_id: str) -> list[str]:
    """The kinds of change (:data:`CHANGES`) of ``skill_id`` from ``old`` to ``new``."""
    before = next((s for s in old.skills if s.id == skill_id), None)
    after = next((s for s in new.skills if s.id == skill_id), None)
    if before is None:  # relied on but not offered by the card negotiated: nothing to compare
        return []
    if after is None:
        return ["skill_removed"]
    out = []
    in_before = tuple(before.input_modes) or tuple(old.default_input_modes)
    in_after = tuple(after.input_modes) or tuple(new.default_input_modes)
    if in_before != in_after:
        out.append("input_changed")
    out_before = tuple(before.output_modes) or tuple(old.default_output_modes)
    out_after = tuple(after.output_modes) or tuple(new.default_output_modes)
    if out_before != out_after:
        out.append("output_changed")
    if list(before.security_requirements) != list(after.security_requirements):
        out.append("security_changed")
    rest = ("name", "description", "tags", "examples")
    if any(getattr(before, f) != getattr(after, f) for f in rest):
        out.append("skill_changed")
    return out


class _Agent:
    __slots__ = ("first", "first_etag", "latest", "latest_etag", "pinned", "seen")

    def __init__(self, card: types.AgentCard, etag: str, pinned: bool) -> None:
        self.first, self.first_etag = card, etag
        self.latest, self.latest_etag = card, etag
        self.pinned = pinned
        self.seen: OrderedDict[str, None] = OrderedDict({etag: None})


class CardBook:
    """The cards a caller uses, by agent name, and the drift of the skills it relies on (see the
    module doc). ``relies_on``: the skill ids the caller uses; None: every skill of the first card
    seen of each agent. ``pin``: keep deciding on the first card. ``max_agents``: agents kept (the
    least recently observed one is forgotten past it)."""

    def __init__(self, relies_on: Iterable[str] | None = None, *, pin: bool = False, max_agents: int = 4096):
        if max_agents < 1:
            raise ValueError(f"max_agents must be at least 1, not {max_agents!r}")
        self.relies_on = frozenset(relies_on) if relies_on is not None else None
        self.pin = pin
        self.max_agents = max_agents
        self._agents: OrderedDict[str, _Agent] = OrderedDict()

    def __len__(self) -> int:
        return len(self._agents)

    def observe(
        self, card: types.AgentCard, etag: str | None = None, *, agent: str | None = None
    ) -> list[Drift]:
        """Take a freshly fetched ``card`` (its ``etag``, else :func:`card_etag`; ``agent``: its name
        here, else the card's). The changes to skills relied on, each also logged and counted; an
        unchanged card (the same ETag), or a card version already seen, reports nothing."""
        etag = etag or card_etag(card)
        name = agent if agent is not None else card.name
        known = self._agents.get(name)
        if known is None:
            self._agents[name] = _Agent(card, etag, self.pin)
            while len(self._agents) > self.max_agents:
                self._agents.popitem(last=False)
            return []
        self._agents.move_to_end(name)
        if etag in known.seen:  # this version, or one already reported (a replica not yet redeployed)
            return []
        known.seen[etag] = None
        while len(known.seen) > _SEEN_PER_AGENT:
            known.seen.popitem(last=False)
        # Compared with the card decisions are made on: the pinned one, or the last adopted.
        base = known.first if known.pinned else known.latest
        drifts = []
        relied = self.relies_on if self.relies_on is not None else {s.id for s in known.first.skills}
        for skill in sorted(relied):
            for change in _changes(base, card, skill):
                drifts.append(Drift(name, skill, change, etag))
                _DRIFT[change].inc()
                log.warning(
                    "card drift: agent %r skill %r: %s (card %s, was %s)%s",
                    name,
                    skill,
                    change,
                    etag,
                    known.first_etag if known.pinned else known.latest_etag,
                    "; pinned to the card negotiated" if known.pinned else "",
                )
        known.latest, known.latest_etag = card, etag
        return drifts

    def card(self, agent: str) -> types.AgentCard | None:
        """The card decisions about ``agent`` are made on: the first one if pinned, else the latest."""
        known = self._agents.get(agent)
        if known is None:
            return None
        return known.first if known.pinned else known.latest

    def etag(self, agent: str) -> str | None:
        """The ETag of :meth:`card`."""
        known = self._agents.get(agent)
        if known is None:
            return None
        return known.first_etag if known.pinned else known.latest_etag

    def latest(self, agent: str) -> types.AgentCard | None:
        """The card last observed of ``agent``, pinned or not."""
        known = self._agents.get(agent)
        return None if known is None else known.latest

    def offers(self, agent: str, skill: str) -> bool:
        """Whether :meth:`card` of ``agent`` offers ``skill``."""
        card = self.card(agent)
        return card is not None and any(s.id == skill for s in card.skills)

    def adopt(self, agent: str) -> None:
        """Decide on ``agent``'s latest card from now on (a pinned book's agent stays pinned to it)."""
        known = self._agents.get(agent)
        if known is not None:
            known.first, known.first_etag = known.latest, known.latest_etag
