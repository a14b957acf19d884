"""The capability registry: which agent replicas are alive, where they are and what they offer, on Redis.

A replica registers its agent card, its address(es) and a TTL (:meth:`Registry.register`), then
sends a capability heartbeat every ``heartbeat_seconds`` (:meth:`Registry.heartbeat`, driven by
:class:`~a2a_grpc.mesh.registration.Registration`): one script call carrying the card's ETag
only, which pushes the entry's deadline on. The card is uploaded again only when it changed (the
heartbeat answers that the registry does not hold that ETag). A replica that stops heartbeating
is gone once its TTL lapses: its keys expire, and the index entries, scored by their deadline,
are no longer read; they are pruned by the next registration or heartbeat that touches their
index, and an index nobody refreshes expires a TTL after its last refresh.

Lookups (by skill: :meth:`Registry.replicas`, by agent name, all) take two round trips: the index
(a sorted set) then the entries; cards come from a local cache by ETag (a card's content never
changes under its ETag) or a third round trip. Callers that miss the same query at once share one
read. Answers are cached in the caller for
``cache_seconds`` (at most ``cache_size`` of them, least recently used dropped first); see
:class:`RegistrySettings` and docs/registry.md for how the cache is invalidated.

**Keys** (``prefix`` from the URL, ``T`` the hash tag ``{registry}``)::

    <prefix>:registry:{registry}:entry:<agent>:<replica>   hash: etag, record (JSON)     PX ttl
    <prefix>:registry:{registry}:card:<etag>               the AgentCard, serialized      PX ttl
    <prefix>:registry:{registry}:all                       zset: entry key -> deadline ms
    <prefix>:registry:{registry}:name:<agent>              zset, the same, per agent name
    <prefix>:registry:{registry}:skill:<skill id>          zset, the same, per skill id

Every key shares one hash tag, so a registration or a heartbeat is one atomic script on one
Redis Cluster node. The registry is small (10,000 replicas of 2 KiB cards are about 20 MiB) and
its load light (10,000 replicas at the 60 s default send 170 heartbeats a second), so one slot
holds it; the keys of each deployment take their URL's ``prefix``. Deadlines are Redis's own
clock (``TIME``), so replicas with skewed clocks agree.

Entries read back are checked: a record that is not ours, a card that does not parse or whose
digest is not its ETag, an entry whose skills do not hold the skill looked up: each is skipped,
logged and counted (``a2a_registry_entries_skipped_total``), and the lookup answers the others.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError
from prometheus_client import Counter

from a2a_grpc import types
from a2a_grpc.mesh import _scripts
from a2a_grpc.mesh.drift import CardBook, card_etag
from a2a_grpc.redisconn import connect, key, parse_redis_url, redis_problem, tag

__all__ = [
    "CardTooLargeError",
    "Entry",
    "Registry",
    "RegistryError",
    "RegistrySettings",
    "RegistryUnavailableError",
]

log = logging.getLogger("a2a_grpc.mesh")

MiB = 1024 * 1024
_TAG = tag("registry")
_MAX_RECORD_BYTES = 64 * 1024  # addresses and skill ids of one replica; a larger record is not ours
_MAX_NAME = 1024


class RegistryError(Exception):
    """A registry operation refused or failed; the message is one line."""


class RegistryUnavailableError(RegistryError):
    """Redis did not answer (cannot connect, timed out, refused the command)."""


class CardTooLargeError(RegistryError, ValueError):
    """A card (or what registers it) exceeds the registry's bounds (``max_card_bytes``, ``max_skills``,
    names, addresses)."""


@dataclass(frozen=True, slots=True)
class RegistrySettings:
    """Where the capability registry lives and how it is kept fresh and read (docs/registry.md)."""

    url: str | None = None
    """The Redis URL (``redis://``, ``rediss://``, ``unix://``; ``?prefix=`` and ``?cluster=true``
    as for the task store); None: no registry (``a2a-grpc serve --registry URL`` sets it)."""
    heartbeat_seconds: float = 60.0
    """How often a registered replica refreshes its entry (a few percent of jitter is added, so
    that replicas started together spread out)."""
    ttl_seconds: float | None = None
    """How long an entry lives without a heartbeat; None: three heartbeats, so one lost heartbeat
    (a Redis failover, a slow beat) does not drop a live replica. At least ``heartbeat_seconds``."""
    cache_seconds: float = 5.0
    """How long a lookup's answer is reused by the caller; 0: every lookup asks Redis. A vanished
    replica is out of the answers within ``ttl_seconds`` plus this."""
    cache_size: int = 1024
    """Lookup answers kept (one per skill, agent name, or all); the least recently used go first."""
    stale_seconds: float = 30.0
    """While Redis does not answer, a cached answer up to this much older than ``cache_seconds`` is
    still given (logged, counted as ``stale``); 0: RegistryUnavailableError at once."""
    max_card_bytes: int = 256 * 1024
    """A larger serialized card is refused at registration (CardTooLargeError) and skipped when read."""
    max_skills: int = 256
    """A card with more skills is refused at registration (each is an index entry)."""
    max_results: int = 10_000
    """Entries one lookup answers at most (those with the latest deadlines)."""
    timeout_seconds: float = 5.0
    """How long one Redis command may wait for its answer (and a connection for its handshake)."""
    retry_base_seconds: float = 0.1
    """After a failed heartbeat, the next is tried after a random wait below this, doubling with each
    failure in a row up to ``retry_cap_seconds`` (full jitter: replicas that lost Redis together
    come back spread over the window, not at once)."""
    retry_cap_seconds: float = 10.0
    """The longest wait between two heartbeats tried while the registry fails (at most the heartbeat
    interval)."""
    address: str | None = None
    """``a2a-grpc serve``: the ``HOST:PORT`` registered for this replica; None: ``server.public_address``,
    else the address the gRPC server is bound to."""

    def __post_init__(self) -> None:
        if self.url is not None:
            try:
                parse_redis_url(self.url)
            except ValueError as exc:
                raise ValueError(f"url: {exc}") from None
        for name in ("heartbeat_seconds", "timeout_seconds", "retry_base_seconds", "retry_cap_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
                raise ValueError(f"{name} must be a finite number of seconds > 0, not {value!r}")
        for name in ("cache_seconds", "stale_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
                raise ValueError(f"{name} must be a finite number of seconds >= 0, not {value!r}")
        if self.retry_cap_seconds < self.retry_base_seconds:
            raise ValueError(
                f"retry_cap_seconds ({self.retry_cap_seconds}) must be at least retry_base_seconds "
                f"({self.retry_base_seconds})"
            )
        ttl = self.ttl_seconds
        if ttl is not None and (not 0 < ttl < math.inf or ttl < self.heartbeat_seconds):
            raise ValueError(
                f"ttl_seconds must be at least heartbeat_seconds ({self.heartbeat_seconds}), not {ttl}"
            )
        for name in ("cache_size", "max_card_bytes", "max_skills", "max_results"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a whole number >= 1, not {value!r}")
        if self.address is not None:
            host, sep, port = self.address.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) <= 65535:
                raise ValueError(f"address must look like HOST:PORT, not {self.address!r}")

    @property
    def ttl(self) -> float:
        """The TTL in force: ``ttl_seconds``, else three heartbeats."""
        return self.ttl_seconds if self.ttl_seconds is not None else 3 * self.heartbeat_seconds


@dataclass(frozen=True, slots=True)
class Entry:
    """One live replica of an agent, as the registry holds it (what a router consumes)."""

    name: str
    """The agent's name (its card's)."""
    replica: str
    """This replica's id among the agent's (its first address unless it registered another)."""
    addresses: tuple[str, ...]
    """Where it is reached, preferred first (``HOST:PORT`` of its gRPC server)."""
    etag: str
    """The ETag of its card (:func:`a2a_grpc.mesh.drift.card_etag`)."""
    skills: tuple[str, ...]
    """The ids of the skills its card offers."""
    card: types.AgentCard
    deadline: float
    """When it lapses without a heartbeat (Unix seconds, Redis's clock)."""

    @property
    def address(self) -> str:
        return self.addresses[0]


# -- metrics (closed label sets) ------------------------------------------------------------------

REGISTRATIONS = Counter(
    "a2a_registry_registrations",
    "Registrations of a replica's card (the first, and each card upload), by outcome: registered, "
    "refused (CardTooLargeError), failed (Redis did not answer).",
    ["outcome"],
)
HEARTBEATS = Counter(
    "a2a_registry_heartbeats",
    "Capability heartbeats, by outcome: refreshed, uploaded (the card had changed or the entry had "
    "lapsed: registered again), failed (Redis did not answer).",
    ["outcome"],
)
LOOKUPS = Counter(
    "a2a_registry_lookups",
    "Registry lookups, by kind (skill, name, all) and result: hit (the caller's cache), miss (asked "
    "Redis), stale (Redis did not answer: an older cached answer), failed.",
    ["kind", "result"],
)
EXPIRED = Counter(
    "a2a_registry_entries_expired",
    "Replicas pruned from the registry's index because their TTL lapsed without a heartbeat.",
)
SKIPPED = Counter(
    "a2a_registry_entries_skipped",
    "Entries read back from Redis and skipped: malformed, a card that does not parse or match its "
    "ETag, or an index entry its record does not back.",
)
_REGISTRATIONS = {o: REGISTRATIONS.labels(o) for o in ("registered", "refused", "failed")}
_HEARTBEATS = {o: HEARTBEATS.labels(o) for o in ("refreshed", "uploaded", "failed")}
_LOOKUPS = {
    (k, r): LOOKUPS.labels(k, r) for k in ("skill", "name", "all") for r in ("hit", "miss", "stale", "failed")
}


class _Answers:
    """The caller's cache of lookup answers: bounded LRU, each answer with the time it was read.

    Hand-written (an OrderedDict) rather than cachetools' TTLCache: an answer past its freshness must
    stay available to be served stale while Redis is away, which a TTL cache drops."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[tuple[str, str], tuple[float, tuple[Entry, ...]]] = OrderedDict()

    def get(self, query: tuple[str, str]) -> tuple[float, tuple[Entry, ...]] | None:
        found = self._data.get(query)
        if found is not None:
            self._data.move_to_end(query)
        return found

    def put(self, query: tuple[str, str], read_at: float, entries: tuple[Entry, ...]) -> None:
        self._data[query] = (read_at, entries)
        self._data.move_to_end(query)
        while len(self._data) > self.size:
            self._data.popitem(last=False)

    def clear(self) -> None:
        self._data.clear()

    def drop(self, name: str, replica: str) -> None:
        for query, (read_at, entries) in list(self._data.items()):
            kept = tuple(e for e in entries if (e.name, e.replica) != (name, replica))
            if len(kept) != len(entries):
                self._data[query] = (read_at, kept)


class Registry:
    """A client of the capability registry at ``settings.url`` (see the module doc). ``cards``: a
    :class:`~a2a_grpc.mesh.drift.CardBook` shown every card a lookup reads from Redis, so that a
    caller notices drift in the cards of the agents it routes to. Close it with :meth:`aclose`."""

    def __init__(
        self, settings: RegistrySettings, *, cards: CardBook | None = None, client: Any = None
    ) -> None:
        if settings.url is None:
            raise ValueError("RegistrySettings.url is needed to reach a registry")
        self.settings = settings
        self.target = parse_redis_url(settings.url)
        self.cards = cards
        self._redis = client or connect(
            self.target, socket_timeout=settings.timeout_seconds, connect_timeout=settings.timeout_seconds
        )
        prefix = self.target.prefix
        self._all = key(prefix, "registry", _TAG, "all")
        self._scripts = {
            name: self._redis.register_script(text)
            for name, text in (
                ("register", _scripts.REGISTER),
                ("heartbeat", _scripts.HEARTBEAT),
                ("live", _scripts.LIVE),
                ("deregister", _scripts.DEREGISTER),
            )
        }
        self._answers = _Answers(settings.cache_size)
        self._reading: dict[tuple[str, str], asyncio.Task[tuple[Entry, ...]]] = {}
        self._card_cache: OrderedDict[str, types.AgentCard] = OrderedDict()
        self.clock = time.monotonic
        """Times the cache (replaceable in tests)."""

    # -- keys ---------------------------------------------------------------------------------------

    def _entry_key(self, name: str, replica: str) -> str:
        return key(self.target.prefix, "registry", _TAG, "entry", name, replica)

    def _card_key(self, etag: str) -> str:
        return key(self.target.prefix, "registry", _TAG, "card", etag)

    def _index_key(self, kind: str, value: str) -> str:
        return key(self.target.prefix, "registry", _TAG, kind, value)

    def _keys(self, name: str, replica: str, etag: str, skills: Iterable[str]) -> list[str]:
        indexes = [self._index_key("name", name), *(self._index_key("skill", s) for s in skills)]
        return [self._entry_key(name, replica), self._card_key(etag), self._all, *indexes]

    # -- a replica's side ---------------------------------------------------------------------------

    def check(self, card: types.AgentCard, addresses: Sequence[str], replica: str | None = None) -> bytes:
        """The serialized ``card`` if the registry takes it with these addresses; CardTooLargeError
        naming the bound it exceeds otherwise."""
        s = self.settings
        body = card.SerializeToString(deterministic=True)
        problem = None
        if not card.name or len(card.name) > _MAX_NAME:
            problem = f"the card's name must be 1 to {_MAX_NAME} characters"
        elif len(body) > s.max_card_bytes:
            problem = f"the card is {len(body)} bytes, more than max_card_bytes ({s.max_card_bytes})"
        elif len(card.skills) > s.max_skills:
            problem = f"the card has {len(card.skills)} skills, more than max_skills ({s.max_skills})"
        elif any(not sk.id or len(sk.id) > _MAX_NAME for sk in card.skills):
            problem = f"every skill id must be 1 to {_MAX_NAME} characters"
        elif not addresses or len(addresses) > 16 or any(not a or len(a) > _MAX_NAME for a in addresses):
            problem = (
                f"1 to 16 addresses of 1 to {_MAX_NAME} characters are needed, not {list(addresses)[:3]!r}"
            )
        elif replica is not None and (not replica or len(replica) > _MAX_NAME):
            problem = f"a replica id must be 1 to {_MAX_NAME} characters"
        if problem is not None:
            _REGISTRATIONS["refused"].inc()
            raise CardTooLargeError(f"agent {card.name[:80]!r} not registered: {problem}")
        return body

    async def register(
        self,
        card: types.AgentCard,
        addresses: Sequence[str],
        replica: str | None = None,
        *,
        upload: bool = False,
    ) -> Entry:
        """Register (or register again, with a new card) one replica of ``card``'s agent reached at
        ``addresses``; its id among the agent's replicas is ``replica`` (default: the first address).
        ``upload``: counted as a heartbeat that uploaded the card. The entry as registered.
        CardTooLargeError, RegistryUnavailableError."""
        body = self.check(card, addresses, replica)
        replica = replica or addresses[0]
        etag = card_etag(card)
        skills = tuple(dict.fromkeys(s.id for s in card.skills))
        record = json.dumps(
            {"name": card.name, "replica": replica, "addresses": list(addresses), "skills": skills}
        )
        keys = self._keys(card.name, replica, etag, skills)
        try:
            deadline, expired = await self._scripts["register"](
                keys=keys, args=[etag, record, body, int(self.settings.ttl * 1000)]
            )
        except Exception as exc:
            _REGISTRATIONS["failed"].inc()
            raise self._unavailable("registering", exc) from None
        _REGISTRATIONS["registered"].inc()
        if upload:
            _HEARTBEATS["uploaded"].inc()
        self._expired(int(expired))
        self._answers.clear()  # this caller's own lookups see its registration at once
        self._remember_card(etag, card)
        return Entry(card.name, replica, tuple(addresses), etag, skills, card, int(deadline) / 1000)

    async def heartbeat(self, name: str, replica: str, etag: str, skills: Iterable[str]) -> float | None:
        """Refresh a registered replica whose card has ``etag`` and ``skills``: its new deadline
        (Unix seconds), or None when the registry does not hold that card for it (it lapsed, or the
        card changed): register it again. RegistryUnavailableError."""
        keys = self._keys(name, replica, etag, dict.fromkeys(skills))
        try:
            deadline, expired = await self._scripts["heartbeat"](
                keys=keys, args=[etag, int(self.settings.ttl * 1000)]
            )
        except Exception as exc:
            _HEARTBEATS["failed"].inc()
            raise self._unavailable("heartbeat", exc) from None
        self._expired(int(expired))
        if not deadline:
            return None
        _HEARTBEATS["refreshed"].inc()
        return int(deadline) / 1000

    async def deregister(self, name: str, replica: str, skills: Iterable[str]) -> None:
        """Remove a replica's entry and its index entries at once (a stopping or draining server)."""
        indexes = [self._all, self._index_key("name", name), *(self._index_key("skill", s) for s in skills)]
        try:
            await self._scripts["deregister"](keys=[self._entry_key(name, replica), *indexes], args=[])
        except Exception as exc:
            raise self._unavailable("deregistering", exc) from None
        self._answers.clear()

    # -- a caller's side ----------------------------------------------------------------------------

    async def replicas(self, skill: str) -> list[Entry]:
        """The live replicas offering ``skill``, freshest first (cached: ``cache_seconds``)."""
        return await self._lookup("skill", skill)

    async def agent(self, name: str) -> list[Entry]:
        """The live replicas of the agent ``name``."""
        return await self._lookup("name", name)

    async def entries(self) -> list[Entry]:
        """Every live replica (at most ``max_results``)."""
        return await self._lookup("all", "")

    def invalidate(self) -> None:
        """Forget every cached answer: the next lookups ask Redis."""
        self._answers.clear()

    def forget(self, name: str, replica: str) -> None:
        """Drop one replica from the cached answers (a caller that found it unreachable), until the
        next answers are read."""
        self._answers.drop(name, replica)

    async def _lookup(self, kind: str, value: str) -> list[Entry]:
        s = self.settings
        now = self.clock()
        cached = self._answers.get((kind, value))
        if cached is not None and now - cached[0] < s.cache_seconds:
            _LOOKUPS[kind, "hit"].inc()
            return list(cached[1])
        try:
            entries = await self._shared_read(kind, value)
        except RegistryUnavailableError as exc:
            if cached is not None and now - cached[0] < s.cache_seconds + s.stale_seconds:
                _LOOKUPS[kind, "stale"].inc()
                log.warning(
                    "registry: %s; answering %s %r from an answer %.1f s old",
                    exc,
                    kind,
                    value,
                    now - cached[0],
                )
                return list(cached[1])
            _LOOKUPS[kind, "failed"].inc()
            raise
        _LOOKUPS[kind, "miss"].inc()
        if s.cache_seconds > 0 or s.stale_seconds > 0:
            self._answers.put((kind, value), now, entries)
        return list(entries)

    async def _shared_read(self, kind: str, value: str) -> tuple[Entry, ...]:
        """One read from Redis for every caller that misses the same query at once (a cache entry
        that lapses under a thousand concurrent calls costs one read, not a thousand). The read runs
        as a task of its own: a caller that gives up does not cancel it for the others."""
        query = (kind, value)
        task = self._reading.get(query)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._read(kind, value), name="registry-lookup")
            self._reading[query] = task
            task.add_done_callback(functools.partial(self._read_done, query))
        return await asyncio.shield(task)

    def _read_done(self, query: tuple[str, str], task: asyncio.Task[tuple[Entry, ...]]) -> None:
        if self._reading.get(query) is task:
            del self._reading[query]
        if not task.cancelled():
            task.exception()  # retrieved: each waiter gets it; with none left it is not an orphan

    async def _read(self, kind: str, value: str) -> tuple[Entry, ...]:
        index = self._all if kind == "all" else self._index_key(kind, value)
        try:
            found = await self._scripts["live"](keys=[index], args=[self.settings.max_results])
            members = [(found[i], found[i + 1]) for i in range(0, len(found), 2)]
            if not members:
                return ()
            pipe = self._redis.pipeline(transaction=False)
            for member, _ in members:
                pipe.hmget(member, "etag", "record")
            rows = await pipe.execute()
        except Exception as exc:
            raise self._unavailable("lookup", exc) from None
        parsed = []
        for (member, score), (etag, record) in zip(members, rows, strict=True):
            entry = self._parse(member, etag, record, float(score) / 1000)
            if entry is None:
                continue
            if (kind == "skill" and value not in entry.skills) or (kind == "name" and entry.name != value):
                # Left in the index by a card that changed: lapses by its deadline, never answered.
                continue
            parsed.append(entry)
        wanted = {e.etag for e in parsed if e.etag not in self._card_cache}
        cards = await self._fetch_cards(sorted(wanted)) if wanted else {}
        out = []
        for entry in parsed:
            card = self._card_cache.get(entry.etag) or cards.get(entry.etag)
            if card is None:
                continue  # lapsed, or skipped and logged by _fetch_cards
            if card.name != entry.name:
                self._skip(entry.name, entry.replica, f"its card names another agent ({card.name[:80]!r})")
                continue
            full = Entry(
                entry.name, entry.replica, entry.addresses, entry.etag, entry.skills, card, entry.deadline
            )
            if self.cards is not None:
                self.cards.observe(card, entry.etag)
            out.append(full)
        return tuple(out)

    def _parse(
        self, member: bytes, etag: bytes | None, record: bytes | None, deadline: float
    ) -> Entry | None:
        shown = member[-120:].decode("utf-8", "replace")
        if etag is None or record is None:
            return None  # lapsed between the two reads (or deregistered): not an error
        if len(record) > _MAX_RECORD_BYTES or len(etag) > 64:
            self._skip(shown, "", f"its record is {len(record)} bytes")
            return None
        try:
            data = json.loads(record)
            name, replica, addresses, skills = (
                data["name"],
                data["replica"],
                data["addresses"],
                data["skills"],
            )
            if not (
                isinstance(name, str)
                and isinstance(replica, str)
                and isinstance(addresses, list)
                and addresses
                and all(isinstance(a, str) and a for a in addresses)
                and isinstance(skills, list)
                and all(isinstance(k, str) for k in skills)
            ):
                raise ValueError("a field has the wrong type")
            if member.decode("utf-8") != self._entry_key(name, replica):
                raise ValueError("it is filed under another key")
            tag_text = etag.decode("ascii")
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            self._skip(shown, "", f"its record is malformed ({type(exc).__name__}: {str(exc)[:80]})")
            return None
        return Entry(name, replica, tuple(addresses), tag_text, tuple(skills), types.AgentCard(), deadline)

    async def _fetch_cards(self, etags: list[str]) -> dict[str, types.AgentCard]:
        try:
            bodies = await self._redis.mget([self._card_key(t) for t in etags])
        except Exception as exc:
            raise self._unavailable("lookup", exc) from None
        out = {}
        for etag, body in zip(etags, bodies, strict=True):
            if body is None:
                continue  # lapsed since its entry was read
            if len(body) > self.settings.max_card_bytes:
                self._skip("card", etag, f"it is {len(body)} bytes, more than max_card_bytes")
                continue
            if hashlib.sha256(body).hexdigest()[:32] != etag:
                self._skip("card", etag, "its content does not match its ETag")
                continue
            card = types.AgentCard()
            try:
                card.ParseFromString(body)
            except DecodeError as exc:
                self._skip("card", etag, f"it does not parse ({exc})")
                continue
            self._remember_card(etag, card)
            out[etag] = card
        return out

    def _remember_card(self, etag: str, card: types.AgentCard) -> None:
        self._card_cache[etag] = card
        self._card_cache.move_to_end(etag)
        while len(self._card_cache) > self.settings.cache_size:
            self._card_cache.popitem(last=False)

    @staticmethod
    def _skip(what: str, replica: str, why: str) -> None:
        SKIPPED.inc()
        log.warning("registry: skipping the entry %s%s: %s", what, f" {replica}" if replica else "", why)

    @staticmethod
    def _expired(count: int) -> None:
        if count > 0:
            EXPIRED.inc(count)

    def _unavailable(self, doing: str, exc: BaseException) -> RegistryUnavailableError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            # redis-py can answer a cancellation that lands mid-command with an error of its own:
            # the caller was cancelled, and must see that, not an unavailable registry.
            raise asyncio.CancelledError(f"cancelled while {doing}: {type(exc).__name__}") from exc
        return RegistryUnavailableError(f"registry {self.target.shown}: {doing}: {redis_problem(exc)}")

    async def ping(self) -> None:
        """RegistryUnavailableError unless Redis answers."""
        try:
            await self._redis.ping()
        except Exception as exc:
            raise self._unavailable("ping", exc) from None

    async def aclose(self) -> None:
        reading = list(self._reading.values())
        for task in reading:
            task.cancel()
        await asyncio.gather(*reading, return_exceptions=True)
        await self._redis.aclose()
