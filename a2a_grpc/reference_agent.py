"""The reference agent: one skill per protocol path, chosen by the message's first word.

It ships with the library so that every path of the protocol can be reached
from a terminal, a test or a benchmark:

| message                | what happens                                                             |
| ---------------------- | ------------------------------------------------------------------------ |
| ``echo TEXT`` or other | a task completes with one artifact holding TEXT (the whole message)      |
| ``reply TEXT``         | a direct Message answers, no task is created                             |
| ``stream N``           | N artifact chunks (appended to one artifact), then completes             |
| ``slow SECONDS``       | works for SECONDS, reporting progress; honours CancelTask                |
| ``bytes N``            | one artifact with a raw part of N bytes                                  |
| ``fail [TEXT]``        | the task fails with TEXT                                                 |
| ``ask``                | input-required; the next message to the task completes it               |
| ``delegate ADDR TEXT`` | sends TEXT to the agent at ADDR over A2A gRPC, relays its artifacts      |

``stream``, ``bytes`` and ``slow`` are bounded by :class:`SkillBounds` (``ReferenceAgent(bounds=...)``):
a number over a bound is refused at once with LimitExceededError naming it.

``delegate`` follows :class:`DelegationPolicy` (``ReferenceAgent(delegation=...)``, or
``a2a-grpc serve --delegate-allow``): it reaches only allowlisted peers (none by default), reports
every failure with one text whatever its cause (so that it cannot be used to probe which ports are
open), and bounds how deep delegations may nest (each call carries
:data:`DELEGATION_DEPTH_HEADER`), so that an agent delegating to itself stops quickly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from a2a_grpc import errors, types
from a2a_grpc.agent import Agent, RequestContext, TaskUpdater
from a2a_grpc.security.credentials import Credentials
from a2a_grpc.security.delegation import DELEGATION_HEADER, SKILL_CLAIM, SKILL_HEADER, DelegationMinter
from a2a_grpc.security.peers import PeerAllowlist, parse_peer_address
from a2a_grpc.security.tls import ClientTls
from a2a_grpc.session.client import Session, SessionOptions, session_interface
from a2a_grpc.session.pool import PeerPool, PoolSettings

if TYPE_CHECKING:  # imported where used: the client module imports this one's neighbours
    from a2a_grpc.client import A2AClient

__all__ = ["DELEGATION_DEPTH_HEADER", "DelegationPolicy", "ReferenceAgent", "SkillBounds", "reference_card"]

log = logging.getLogger("a2a_grpc.reference_agent")

DELEGATION_DEPTH_HEADER = "a2a-grpc-delegation-depth"
"""Metadata of a delegated call: how many delegations led to it (1 for the first). An ``a2a-``
name, so that it crosses the bridge too."""


@dataclass(frozen=True, slots=True)
class DelegationPolicy:
    """Where the ``delegate`` skill may send messages, and how.

    ``allow``: the peers (:class:`a2a_grpc.security.peers.PeerAllowlist` entries: ``HOST:PORT``,
    an address, a network such as ``10.1.0.0/16``, a host name); empty refuses every delegation.
    ``max_depth``: how many delegations may nest; a request that arrives deeper fails, and a request
    at the limit does not delegate further. ``tls``: call peers over TLS with these settings (None:
    plaintext). ``timeout``: seconds a delegated call may take. ``credentials``: what to present to
    peers, as each peer's card asks (read over gRPC first; a peer that serves no card over gRPC gets
    every credential held). ``tokens``: mint a task-scoped delegation token per delegated call
    (:mod:`a2a_grpc.security.delegation`), for the peer as dialled (``HOST:PORT``), this task, and
    the skill the text invokes (its first word, if the peer's card has a skill by that id; else the
    card's first skill), declared in ``a2a-grpc-skill``. ``pool``: how the connections to peers are
    kept (one per peer, shared by the delegated calls; :class:`~a2a_grpc.session.pool.PoolSettings`).
    """

    allow: Iterable[str] | PeerAllowlist = ()
    max_depth: int = 2
    tls: ClientTls | None = None
    timeout: float = 30.0
    credentials: Credentials | None = None
    tokens: DelegationMinter | None = None
    pool: PoolSettings = field(default_factory=PoolSettings)
    peers: PeerAllowlist = field(init=False, repr=False, compare=False, default=PeerAllowlist())

    def __post_init__(self) -> None:
        peers = self.allow if isinstance(self.allow, PeerAllowlist) else PeerAllowlist.of(self.allow)
        object.__setattr__(self, "allow", peers.entries)
        object.__setattr__(self, "peers", peers)
        if not isinstance(self.max_depth, int) or self.max_depth < 0:
            raise ValueError(f"max_depth must be a whole number >= 0, not {self.max_depth!r}")
        if not self.timeout > 0:
            raise ValueError(f"timeout must be positive seconds, not {self.timeout!r}")
        if not isinstance(self.pool, PoolSettings):
            raise ValueError(f"pool must be a2a_grpc.session.pool.PoolSettings, not {self.pool!r}")


@dataclass(frozen=True, slots=True, eq=False)
class _PeerKey:
    """Who a pooled connection reaches, and under which policy (a changed policy opens anew)."""

    host: str
    dial: str
    port: int
    policy: DelegationPolicy
    task_id: str = ""
    """With delegation tokens, the delegating task: each has its own connection."""

    def _fields(self) -> tuple[str, str, int, int, str]:
        return (self.host, self.dial, self.port, id(self.policy), self.task_id)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _PeerKey) and self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class _Link:
    """A pooled connection to a peer: its client, a session when the peer offers one, and the
    credentials its card asked for (sent per call on the unary binding)."""

    client: A2AClient
    session: Session | None
    presented: tuple[tuple[str, str], ...]
    card: types.AgentCard | None

    @property
    def alive(self) -> bool:
        return self.session is None or self.session.alive

    @property
    def going_away(self) -> bool:
        """Its session's server drains (the pool closes it once the calls using it are over)."""
        return self.session is not None and self.session.going_away


@dataclass(frozen=True, slots=True)
class SkillBounds:
    """How much one request may make the reference agent do. A request over a bound fails at once
    with LimitExceededError naming the field (``stream 1000000`` -> ``max_stream_chunks``), before
    any work, so the caller gets the error itself rather than a failed task."""

    max_stream_chunks: int = 100_000
    """``stream N``: the most chunks."""
    max_artifact_bytes: int = 8 * 1024 * 1024
    """``bytes N``: the largest artifact, sent as one event. Its bytes are built and encoded in
    memory several times over (the event, the task kept, each binding's encoding), so this bounds
    memory too; an agent that sends more sends it in chunks."""
    max_slow_seconds: float = 600.0
    """``slow SECONDS``: the longest stay."""

    def __post_init__(self) -> None:
        for name in ("max_stream_chunks", "max_artifact_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a whole number >= 0, not {value!r}")
        if not self.max_slow_seconds >= 0:
            raise ValueError(f"max_slow_seconds must be >= 0 seconds, not {self.max_slow_seconds!r}")


def _skill(skill_id: str, name: str, description: str, example: str) -> types.AgentSkill:
    return types.AgentSkill(
        id=skill_id, name=name, description=description, tags=[skill_id], examples=[example]
    )


def reference_card(bounds: SkillBounds | None = None) -> types.AgentCard:
    """The reference agent's card; its skill descriptions state ``bounds`` (default: the defaults)."""
    bounds = bounds or SkillBounds()
    card = types.AgentCard(
        name="a2a-grpc reference agent",
        description="Reaches every A2A protocol path; the first word of the message picks the behaviour.",
        version="0.1.0",
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain", "application/octet-stream"],
        provider=types.AgentProvider(organization="a2a-grpc", url="https://example.invalid/a2a-grpc"),
        skills=[
            _skill(
                "echo",
                "Echo",
                "Any message not starting with another skill's word: a task completes with "
                "one artifact holding the message text.",
                "echo hello",
            ),
            _skill(
                "reply",
                "Direct reply",
                "'reply TEXT': answers with a Message and creates no task.",
                "reply hi",
            ),
            _skill(
                "stream",
                "Stream chunks",
                "'stream N': N artifact chunks appended to one artifact "
                f"(N <= {bounds.max_stream_chunks}), then completes.",
                "stream 5",
            ),
            _skill(
                "slow",
                "Slow task",
                "'slow SECONDS': stays working for SECONDS, reporting progress every "
                f"0.1 s (SECONDS <= {bounds.max_slow_seconds:g}); CancelTask stops it.",
                "slow 2",
            ),
            _skill(
                "bytes",
                "Large artifact",
                f"'bytes N': one artifact with a raw part of N bytes (N <= {bounds.max_artifact_bytes}).",
                "bytes 1048576",
            ),
            _skill(
                "fail",
                "Failure",
                "'fail [TEXT]': the task fails with TEXT as its status message.",
                "fail oops",
            ),
            _skill(
                "ask",
                "Multi-turn",
                "'ask': the task asks for input (input-required); the next message sent "
                "to the same task completes it, quoting that message.",
                "ask",
            ),
            _skill(
                "delegate",
                "Delegation",
                "'delegate HOST:PORT TEXT': sends TEXT to the A2A agent at HOST:PORT "
                "over gRPC and relays the artifacts it produces. Only peers the operator allowed "
                "(none unless configured); delegations nest at most a few levels deep.",
                "delegate 127.0.0.1:50052 echo hi",
            ),
        ],
    )
    card.capabilities.streaming = True
    card.capabilities.push_notifications = True
    card.capabilities.extended_agent_card = True
    return card


def _count(word: str, arg: str, bound: str, limit: float, kind: type[int] | type[float]) -> float:
    try:
        value = kind(arg)
    except ValueError:
        raise errors.InvalidParamsError(f"'{word}' takes a number, not {arg!r}") from None
    if not value >= 0:
        raise errors.InvalidParamsError(f"'{word}' takes a number from 0 to {limit:g}, not {arg}")
    if value > limit:
        raise errors.LimitExceededError(
            f"'{word}' takes a number from 0 to {limit:g} ({bound} of this agent), not {arg}",
            limit=bound,
            value=limit,
        )
    return value


class ReferenceAgent(Agent):
    """See the module docstring for the skills; ``delegation`` says where ``delegate`` may go
    (default: nowhere), ``bounds`` how much ``stream``, ``bytes`` and ``slow`` may ask for."""

    def __init__(
        self, delegation: DelegationPolicy | None = None, *, bounds: SkillBounds | None = None
    ) -> None:
        self.peers: PeerPool[_PeerKey, _Link] = PeerPool(self._open_peer)
        """The connections to the peers ``delegate`` calls, one per peer, shared by its calls; kept
        as the delegation policy's ``pool`` says."""
        self.delegation = delegation or DelegationPolicy()
        self.bounds = bounds or SkillBounds()
        self.card = reference_card(self.bounds)
        extended = types.AgentCard()
        extended.CopyFrom(self.card)
        extended.description += " (extended card: shown to authenticated callers)"
        self.extended_card = extended

    @property
    def delegation(self) -> DelegationPolicy:
        """Where ``delegate`` may go, and how it keeps its connections (a new policy applies to the
        connections held too)."""
        return self._delegation

    @delegation.setter
    def delegation(self, policy: DelegationPolicy) -> None:
        self._delegation = policy
        self.peers.settings = policy.pool

    async def execute(self, context: RequestContext, updater: TaskUpdater) -> None:
        depth = _depth(context)
        if depth is None or depth > self.delegation.max_depth:
            came = "an unreadable number of" if depth is None else str(depth)
            await updater.fail(
                f"refused: this request comes {came} delegations deep ({DELEGATION_DEPTH_HEADER}), "
                f"beyond this agent's limit of {self.delegation.max_depth}"
            )
            return
        if context.task is not None and context.task.status.state == types.TASK_STATE_INPUT_REQUIRED:
            await updater.working()
            await updater.complete(f"thanks, you said: {context.text}")
            return
        word, _, rest = context.text.strip().partition(" ")
        rest = rest.strip()
        _check_declared_skill(context, self.card)
        match word.lower():
            case "reply":
                await updater.reply(rest or "hello")
            case "stream":
                bound = self.bounds.max_stream_chunks
                await self._stream(updater, int(_count(word, rest or "3", "max_stream_chunks", bound, int)))
            case "slow":
                bound_s = self.bounds.max_slow_seconds
                await self._slow(updater, _count(word, rest or "1", "max_slow_seconds", bound_s, float))
            case "bytes":
                bound = self.bounds.max_artifact_bytes
                size = int(_count(word, rest or "1024", "max_artifact_bytes", bound, int))
                await updater.artifact(
                    [types.Part(raw=b"\x00" * size, media_type="application/octet-stream")],
                    name="bytes",
                    last_chunk=True,
                )
                await updater.complete()
            case "fail":
                await updater.fail(rest or "failed on request")
            case "ask":
                await updater.require_input("what should I work on?")
            case "delegate":
                await self._delegate(updater, rest, depth)
            case _:
                await updater.artifact([types.Part(text=context.text)], name="echo", last_chunk=True)
                await updater.complete()

    async def _stream(self, updater: TaskUpdater, n: int) -> None:
        await updater.working()
        artifact_id = None
        for i in range(n):
            artifact_id = await updater.artifact(
                [types.Part(text=f"chunk {i}")],
                artifact_id=artifact_id,
                name="stream",
                append=i > 0,
                last_chunk=i == n - 1,
            )
        await updater.complete()

    async def _slow(self, updater: TaskUpdater, seconds: float) -> None:
        await updater.working("starting")
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while (left := end - loop.time()) > 0:
            await asyncio.sleep(min(0.1, left))
            await updater.working(f"{max(0.0, end - loop.time()):.1f}s left")
        await updater.complete("done")

    async def _delegate(self, updater: TaskUpdater, rest: str, depth: int) -> None:
        words = rest.split(maxsplit=1)
        if len(words) < 2:
            raise errors.InvalidParamsError(
                "'delegate' takes HOST:PORT and a message: delegate 127.0.0.1:50052 echo hi"
            )
        address, text = words
        try:
            host, port = parse_peer_address(address)
        except ValueError as exc:
            raise errors.InvalidParamsError(f"'delegate' takes HOST:PORT first: {exc}") from None
        policy = self.delegation
        if depth >= policy.max_depth:
            await updater.fail(
                f"delegation refused: this request is already {depth} delegations deep "
                f"(the limit is {policy.max_depth})"
            )
            return
        await updater.working(f"delegating to {address}")
        try:
            response = await self._send(host, port, text, depth + 1, updater.task_id)
        except Exception as exc:
            # One text for every cause (not allowed, unknown name, closed or filtered port, the
            # peer's error): the caller must not learn which ports answer. The reason is logged.
            log.info("delegation to %s failed: %s: %s", address, type(exc).__name__, exc)
            await updater.fail(f"delegation to {address} failed")
            return
        if response.HasField("message"):
            await updater.artifact(response.message.parts, name=f"from {address}", last_chunk=True)
            await updater.complete()
            return
        task = response.task
        for artifact in task.artifacts:
            await updater.artifact(artifact.parts, name=artifact.name or f"from {address}", last_chunk=True)
        if task.status.state == types.TASK_STATE_COMPLETED:
            await updater.complete(f"delegated task {task.id} completed")
        else:
            said = " ".join(p.text for p in task.status.message.parts if p.text)[:500]
            state = types.TaskState.Name(task.status.state)
            await updater.fail(f"delegated task {task.id} ended {state}" + (f": {said}" if said else ""))

    async def _send(
        self, host: str, port: int, text: str, depth: int, task_id: str
    ) -> types.SendMessageResponse:
        """Send ``text`` to an allowed peer (PermissionError if it is not), to the address its name
        resolved to when it was checked, over the connection the pool holds for that peer."""
        from a2a_grpc.client import A2AClient

        policy = self.delegation
        dial = await policy.peers.resolve(host, port)
        if dial is None:
            raise PermissionError(f"{host}:{port} is not in the delegation allowlist")
        request = A2AClient.text_request(text)
        # With tokens, a connection serves one delegating task: its session is that task's.
        key = _PeerKey(host, dial, port, policy, task_id if policy.tokens is not None else "")
        async with self.peers.lease(key) as link:
            metadata = [(DELEGATION_DEPTH_HEADER, str(depth))]
            if policy.tokens is not None:
                skill = _skill_for(link.card, text)
                token = policy.tokens.mint(audience=f"{host}:{port}", task_id=task_id, skill=skill)
                metadata += [(DELEGATION_HEADER, token), (SKILL_HEADER, skill)]
            if link.session is not None:  # its Hello carried the credentials; the rest goes per call
                return await link.session.send_message(request, timeout=policy.timeout, metadata=metadata)
            response: types.SendMessageResponse = await link.client.send_message(
                request, timeout=policy.timeout, metadata=[*link.presented, *metadata]
            )
            return response

    @contextlib.asynccontextmanager
    async def _open_peer(self, key: _PeerKey) -> AsyncIterator[_Link]:
        """A connection to an allowed peer: a session if its card offers the session binding (the
        Hello carries the credentials its card asks for), else the unary binding."""
        from a2a_grpc.client import A2AClient, ClientSettings, open_channel

        host, dial, port, policy, task_id = key.host, key.dial, key.port, key.policy, key.task_id
        target = f"[{dial}]:{port}" if ":" in dial else f"{dial}:{port}"
        settings = ClientSettings(timeout=policy.timeout, connect_timeout=policy.timeout)
        if policy.tls is not None:
            # Dialled by address, verified by name: the certificate must be the name's.
            name = policy.tls.server_name or host
            verify = [("grpc.ssl_target_name_override", name)] if name != dial else []
            channel = policy.tls.secure_channel(target, [*settings.grpc_options(), *verify])
        else:
            channel = open_channel(target, settings)
        try:
            async with A2AClient(target, settings=settings, channel=channel) as client:
                card = await self._card_of(client)
                presented = self._credentials_for(card, policy)
                if card is not None and session_interface(card) is not None:
                    hello = dict(presented)
                    if policy.tokens is not None:  # the handshake's credential: this task's token
                        hello[DELEGATION_HEADER] = policy.tokens.mint(
                            audience=f"{host}:{port}", task_id=task_id, skill=_skill_for(card, "")
                        )
                    opening = SessionOptions(agent_name=self.card.name, metadata=hello)
                    async with client.session(opening) as session:
                        yield _Link(client, session, presented, card)
                else:
                    yield _Link(client, None, presented, card)
        finally:
            await channel.close()

    async def aclose(self) -> None:
        await self.peers.aclose()

    @staticmethod
    async def _card_of(client: Any) -> types.AgentCard | None:
        """The peer's public card over gRPC, or None if it serves none (not an a2a-grpc server)."""
        try:
            card: types.AgentCard = await client.get_agent_card()
        except errors.A2AError:
            return None
        return card

    @staticmethod
    def _credentials_for(
        card: types.AgentCard | None, policy: DelegationPolicy
    ) -> tuple[tuple[str, str], ...]:
        """The headers of the policy's credentials that the peer's card asks for (ValueError if they
        meet none of its requirements); without a card, all it holds (the peer is allowlisted)."""
        credentials = policy.credentials
        if credentials is None:
            return ()
        return credentials.headers(card)


def _skill_for(card: types.AgentCard | None, text: str) -> str:
    """The skill ``text`` invokes at the agent of ``card`` (the reference agent's rule, read from
    its card): its first word if the card has a skill by that id, else the card's first skill
    ("echo" for a peer without a card)."""
    word = text.strip().partition(" ")[0].lower()
    ids = [skill.id for skill in card.skills] if card is not None else []
    if word in ids:
        return word
    return ids[0] if ids else "echo"


def _check_declared_skill(context: RequestContext, card: types.AgentCard) -> None:
    """A message that declares its skill (``a2a-grpc-skill``, as delegated calls must) does that
    skill's work and no other."""
    declared = context.headers.get(SKILL_HEADER)
    if declared is None:
        return
    invoked = _skill_for(card, context.text)
    if declared != invoked:
        raise errors.PermissionDeniedError(
            f"the message invokes skill {invoked!r}, not the declared {errors.echo(declared, 64)} "
            f"({SKILL_HEADER}; for a delegation token, its {SKILL_CLAIM} claim)",
            metadata={"claim": SKILL_CLAIM},
        )


def _depth(context: RequestContext) -> int | None:
    """How many delegations led to this request (0 when not delegated); None if the header is not a
    small whole number."""
    value = context.headers.get(DELEGATION_DEPTH_HEADER)
    if value is None:
        return 0
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 3 else None
