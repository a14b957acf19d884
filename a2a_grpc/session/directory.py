"""Where each session lives, for replicas: :class:`SessionDirectory`.

A session's state (its running calls, credit windows and the replay of frames the client has not
acknowledged) stays in the process that opened it, its *home*: moving it would mean moving
running calls, which no store can do. Behind a load balancer a client that resumes may reach
another replica; that replica looks the session up here and, when the home is alive, forwards the
connection to it (:mod:`a2a_grpc.session.forward`), so that the home's own replay sends exactly the
frames the client missed: nothing lost, nothing twice. Shipping each session's replay to Redis
instead would put a write on every frame of every session (the hot path) to serve a rare event; a
lookup and a pass-through cost only the resume that needs them.

What an entry holds (JSON, one key per session, ``<prefix>:session:{<id>}``): the home's owner id
(random per process) and advertised address, and the SHA-256 of the resume token and of the
principal that opened the session (so that a replica refuses a forged token or another principal's
resume at its edge, without contacting the home; neither secret is stored). Each replica also
holds a liveness key, ``<prefix>:replica:{<owner>}``. Both are renewed every
``home_refresh_seconds`` and lapse after three times that unless renewed, so a replica that died
is known gone within it and leaves nothing behind for longer; a replica that stops cleanly removes
its liveness key at once. A session that ends is not written: its entry lapses with the lease, and
meanwhile its home, still alive, answers a resume of it itself ("expired"), as it would directly;
a write per session end would cost every session to serve that rare resume.

Two backends: :class:`RedisSessionDirectory` (replicas of one agent share one Redis, the URL's
``prefix`` keeping agents apart; each key has its own hash tag, as no operation touches two) and
:class:`MemorySessionDirectory` (one process: the servers it runs that share the object). Both
store the same bytes, read through one codec: an entry that is not ours (garbage bytes, a huge
value, a field of the wrong type) is :class:`DirectoryEntryError`, never a crash.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from a2a_grpc.redisconn import RedisTarget, connect, key, redis_problem, tag

__all__ = [
    "DirectoryEntryError",
    "DirectoryUnavailableError",
    "Home",
    "MemorySessionDirectory",
    "RedisSessionDirectory",
    "SessionDirectory",
    "SessionEntry",
    "digest",
]

MAX_ENTRY_BYTES = 4096
"""An entry longer than this is not one of ours (ours are about 250 bytes)."""
_VERSION = 1
_HEX = frozenset("0123456789abcdef")


def digest(secret: str) -> str:
    """The SHA-256 (hex) of a resume token or a principal key, as an entry keeps it: tokens are 24
    random bytes, so an unsalted hash reveals nothing useful."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Home:
    """A replica, as the directory names it: its owner id (random per process) and the ``HOST:PORT``
    other replicas reach it at (``ServerSettings.advertise_address``)."""

    owner: str
    address: str


@dataclass(frozen=True, slots=True)
class SessionEntry:
    """What the directory says of one session: its home, and the digests of its resume token and
    of its principal."""

    home: Home
    token: str
    principal: str

    def token_matches(self, token: str) -> bool:
        return hmac.compare_digest(digest(token), self.token)

    def principal_matches(self, principal: str) -> bool:
        return hmac.compare_digest(digest(principal), self.principal)


class DirectoryEntryError(Exception):
    """An entry that is not one this module wrote (the message says what is wrong with it)."""


class DirectoryUnavailableError(Exception):
    """The directory could not be read or written (Redis away, or too slow): one line, no secret."""


def encode(entry: SessionEntry) -> bytes:
    fields = {
        "v": _VERSION,
        "owner": entry.home.owner,
        "address": entry.home.address,
        "token": entry.token,
        "principal": entry.principal,
    }
    return json.dumps(fields, separators=(",", ":")).encode()


def decode(data: bytes) -> SessionEntry:
    """The entry in ``data``; DirectoryEntryError saying why when it is not one."""
    if len(data) > MAX_ENTRY_BYTES:
        raise DirectoryEntryError(f"{len(data)} bytes, more than an entry ({MAX_ENTRY_BYTES} at most)")
    try:
        fields = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise DirectoryEntryError("not JSON") from None
    if not isinstance(fields, dict) or fields.get("v") != _VERSION:
        raise DirectoryEntryError(f"not a version {_VERSION} entry")
    owner, address = fields.get("owner"), fields.get("address")
    if not isinstance(owner, str) or not 0 < len(owner) <= 64:
        raise DirectoryEntryError("its owner is not a string of 1 to 64 characters")
    if not isinstance(address, str) or not _is_address(address):
        raise DirectoryEntryError("its address is not HOST:PORT")
    home = Home(owner, address)
    token, principal = fields.get("token"), fields.get("principal")
    for name, value in (("token", token), ("principal", principal)):
        if not isinstance(value, str) or len(value) != 64 or not set(value) <= _HEX:
            raise DirectoryEntryError(f"its {name} digest is not 64 hex digits")
    assert isinstance(token, str)
    assert isinstance(principal, str)
    return SessionEntry(home, token, principal)


def _is_address(address: str) -> bool:
    host, sep, port = address.rpartition(":")
    return bool(sep and host and len(address) <= 300 and port.isdigit() and 0 < int(port) <= 65535)


class SessionDirectory:
    """Session id -> :class:`SessionEntry`, and which replicas are alive (see the module doc).
    Subclasses store bytes under keys; an operation that may wait (Redis) is bounded by
    ``timeout`` seconds and fails with :class:`DirectoryUnavailableError` beyond it."""

    def __init__(self, prefix: str, timeout: float = 2.0) -> None:
        self.prefix = prefix
        self.timeout = timeout

    def _session_key(self, session_id: str) -> str:
        return key(self.prefix, "session", tag(session_id))

    def _replica_key(self, owner: str) -> str:
        return key(self.prefix, "replica", tag(owner))

    async def enter(self, session_id: str, entry: SessionEntry, ttl: float) -> None:
        """Write a session's entry (it lapses after ``ttl`` seconds unless renewed)."""
        await self._bounded(self._put({self._session_key(session_id): encode(entry)}, ttl))

    async def enter_many(self, entries: dict[str, SessionEntry], ttl: float) -> None:
        """Write several sessions' entries (one round trip)."""
        values = {self._session_key(s): encode(e) for s, e in entries.items()}
        await self._bounded(self._put(values, ttl))

    async def renew(self, home: Home, session_ids: Iterable[str], ttl: float) -> None:
        """``home`` is alive, and so are these sessions of it: both lapse ``ttl`` seconds from now."""
        replica = self._replica_key(home.owner)
        await self._bounded(self._put({replica: home.address.encode()}, ttl))
        await self._bounded(self._expire([self._session_key(s) for s in session_ids], ttl))

    async def depart(self, home: Home) -> None:
        """``home`` stops: it is no longer alive."""
        await self._bounded(self._delete(self._replica_key(home.owner)))

    async def find(self, session_id: str) -> SessionEntry | None:
        """The session's entry; None if there is none. DirectoryEntryError if it is not ours."""
        data = await self._bounded(self._get(self._session_key(session_id)))
        return None if data is None else decode(data)

    async def alive(self, owner: str) -> bool:
        """Whether the replica ``owner`` renewed its liveness within its lease."""
        return await self._bounded(self._get(self._replica_key(owner))) is not None

    async def aclose(self) -> None:
        """Release the connection (if this directory opened one)."""

    async def _bounded(self, work: Any) -> Any:
        return await work  # in memory: nothing to wait for (Redis bounds its own)

    async def _put(self, values: dict[str, bytes], ttl: float) -> None:
        raise NotImplementedError

    async def _expire(self, keys: list[str], ttl: float) -> None:
        raise NotImplementedError

    async def _get(self, name: str) -> bytes | None:
        raise NotImplementedError

    async def _delete(self, name: str) -> None:
        raise NotImplementedError


class MemorySessionDirectory(SessionDirectory):
    """The directory of one process: the servers that share this object find each other's sessions
    (tests, or several servers in one process). Expired keys are dropped when read or renewed."""

    def __init__(self, prefix: str = "a2a", timeout: float = 2.0) -> None:
        super().__init__(prefix, timeout)
        self.values: dict[str, tuple[bytes, float]] = {}
        """Key -> (bytes, monotonic expiry): open to tests, which may spoil an entry."""

    async def _put(self, values: dict[str, bytes], ttl: float) -> None:
        until = time.monotonic() + ttl
        for name, data in values.items():
            self.values[name] = (data, until)

    async def _expire(self, keys: list[str], ttl: float) -> None:
        now = time.monotonic()
        for name in keys:
            held = self.values.get(name)
            if held is not None and held[1] > now:
                self.values[name] = (held[0], now + ttl)
        for name in [n for n, (_, until) in self.values.items() if until <= now]:
            del self.values[name]  # bounded: what lapsed goes at each renewal

    async def _get(self, name: str) -> bytes | None:
        held = self.values.get(name)
        if held is None or held[1] <= time.monotonic():
            return None
        return held[0]

    async def _delete(self, name: str) -> None:
        self.values.pop(name, None)


class RedisSessionDirectory(SessionDirectory):
    """The directory in Redis (``target``: :func:`a2a_grpc.redisconn.parse_redis_url`), shared by
    the replicas of one agent. Opens its own connection pool, closed by :meth:`aclose`."""

    def __init__(self, target: RedisTarget, timeout: float = 2.0, client: Any = None) -> None:
        super().__init__(target.prefix, timeout)
        self.target = target
        self._owned = client is None
        self.client = (
            connect(target, socket_timeout=timeout, connect_timeout=timeout) if client is None else client
        )

    async def _bounded(self, work: Any) -> Any:
        from redis import exceptions

        try:
            async with asyncio.timeout(self.timeout):
                return await work
        except TimeoutError:
            raise DirectoryUnavailableError(
                f"Redis at {self.target.shown}: no answer within {self.timeout:g} s"
            ) from None
        except exceptions.RedisError as exc:
            raise DirectoryUnavailableError(f"Redis at {self.target.shown}: {redis_problem(exc)}") from None

    async def _put(self, values: dict[str, bytes], ttl: float) -> None:
        ms = max(1, int(ttl * 1000))
        if len(values) == 1:
            [(name, data)] = values.items()
            await self.client.set(name, data, px=ms)
            return
        async with self.client.pipeline(transaction=False) as pipe:
            for name, data in values.items():
                pipe.set(name, data, px=ms)
            await pipe.execute()

    async def _expire(self, keys: list[str], ttl: float) -> None:
        if not keys:
            return
        ms = max(1, int(ttl * 1000))
        # One round trip for every session of this replica (keys of many slots: no transaction).
        async with self.client.pipeline(transaction=False) as pipe:
            for name in keys:
                pipe.pexpire(name, ms)
            await pipe.execute()

    async def _get(self, name: str) -> bytes | None:
        data = await self.client.get(name)
        return None if data is None else bytes(data)

    async def _delete(self, name: str) -> None:
        await self.client.delete(name)

    async def aclose(self) -> None:
        if self._owned:
            await self.client.aclose()
