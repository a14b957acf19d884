"""Redis, the shared backend of replicas: one URL grammar, one key layout, one error shape.

Every part of a2a-grpc that keeps state in Redis (the task store, event logs and live-task
registry, rate limits and de-duplication, the capability registry, session homes) connects with
:func:`connect` and names its keys with :func:`key`, so that one deployment's keys can be told
apart from another's and a Redis Cluster can serve them.

**URLs.** ``redis://[user:password@]host[:port][/db]``, ``rediss://...`` (TLS; the query takes
redis-py's ``ssl_ca_certs``, ``ssl_certfile``, ``ssl_keyfile``, ``ssl_cert_reqs``) and
``unix:///path/to/redis.sock``. Two query parameters are ours and are removed before redis-py
reads the rest:

* ``prefix`` (default ``a2a``): the first part of every key. Agents that share one Redis but
  not their tasks (two different agents) take different prefixes; the replicas of one agent
  take the same.
* ``cluster`` (``true`` or ``false``, default false): connect to a Redis Cluster.

**Keys and Redis Cluster.** A key is ``<prefix>:{<tag>}:<part>:<part>...``: everything one
atomic operation touches shares its ``{tag}`` (a task's record, its events and its lease share
the task's), so that a cluster puts it on one node. Parts are escaped (``%``, ``:``, ``{`` and
``}`` as ``%25``, ``%3A``, ``%7B`` and ``%7D``): an id holding a colon or a brace can never make
two different keys equal, nor move a key to another slot.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_PREFIX",
    "RedisTarget",
    "Tag",
    "connect",
    "key",
    "parse_redis_url",
    "redis_problem",
    "tag",
]

DEFAULT_PREFIX = "a2a"
_SCHEMES = ("redis", "rediss", "unix")
_ESCAPES = str.maketrans({"%": "%25", ":": "%3A", "{": "%7B", "}": "%7D"})
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """A parsed Redis URL: what redis-py connects to, and our own parameters."""

    url: str
    """The URL redis-py reads (our query parameters removed)."""
    prefix: str = DEFAULT_PREFIX
    cluster: bool = False
    shown: str = ""
    """The URL without its password, for messages and logs."""


def parse_redis_url(url: str) -> RedisTarget:
    """Read a ``redis://``, ``rediss://`` or ``unix://`` URL (see the module doc); ValueError with
    a one-line message naming the problem when it is not one."""
    if not isinstance(url, str) or not url:
        raise ValueError("a Redis URL is needed, e.g. redis://127.0.0.1:6379/0")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in _SCHEMES:
        raise ValueError(f"Redis URL scheme {parts.scheme!r} is not one of redis://, rediss://, unix://")
    if parts.scheme != "unix" and not parts.hostname:
        raise ValueError(f"Redis URL {_hide(parts)!r} names no host, e.g. redis://127.0.0.1:6379/0")
    try:
        parts.port  # noqa: B018 - urllib checks the port only when it is read
    except ValueError:
        raise ValueError(f"Redis URL {_hide(parts)!r} has an invalid port") from None
    if parts.scheme != "unix" and parts.path not in ("", "/"):
        db = parts.path.lstrip("/")
        if not db.isdigit():
            raise ValueError(f"Redis URL {_hide(parts)!r}: the path must be a database number, not {db!r}")
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    prefix, cluster, rest = DEFAULT_PREFIX, False, []
    for name, value in query:
        if name == "prefix":
            if not value or any(c in value for c in "{}") or len(value) > 64:
                raise ValueError(f"Redis URL prefix {value!r} must be 1 to 64 characters without braces")
            prefix = value
        elif name == "cluster":
            if value.lower() not in _TRUE + _FALSE:
                raise ValueError(f"Redis URL parameter cluster={value!r} must be true or false")
            cluster = value.lower() in _TRUE
        else:
            rest.append((name, value))
    if cluster and parts.scheme == "unix":
        raise ValueError("a Redis Cluster is reached over TCP: use redis:// or rediss:// with cluster=true")
    plain = parts._replace(query=urllib.parse.urlencode(rest))
    return RedisTarget(urllib.parse.urlunsplit(plain), prefix, cluster, _hide(plain))


def _hide(parts: urllib.parse.SplitResult) -> str:
    netloc = parts.netloc
    if parts.password is not None:
        netloc = f"{parts.username or ''}:***@{netloc.rpartition('@')[2]}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc, query=""))


DEFAULT_MAX_CONNECTIONS = 64
"""The connections one client opens at most, unless told (:func:`connect`)."""


def connect(
    target: RedisTarget | str,
    *,
    socket_timeout: float | None = 5.0,
    connect_timeout: float = 5.0,
    max_connections: int | None = DEFAULT_MAX_CONNECTIONS,
) -> Any:
    """An asyncio client for ``target`` (``redis.asyncio.Redis``, or ``RedisCluster`` with
    ``cluster=true``). Nothing is sent until it is used: check it with ``await client.ping()``.

    ``socket_timeout``: how long one command may wait for its answer (None: forever; blocking
    reads such as ``XREAD BLOCK`` pass their own). ``max_connections``: the most connections the
    client opens; a command that finds them all busy waits for one (up to ``socket_timeout``, else
    ``connect_timeout``), where redis-py's own pool would fail it at once, so a burst of calls
    queues rather than fails. None: no bound (blocking reads that each hold a connection for as
    long as they wait). Typed ``Any``: redis-py's two clients share no protocol, and callers use the
    commands both have."""
    if isinstance(target, str):
        target = parse_redis_url(target)
    options: dict[str, Any] = {
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": connect_timeout,
        "decode_responses": False,
        "max_connections": max_connections if max_connections is not None else _UNBOUNDED,
    }
    if target.cluster:
        from redis.asyncio.cluster import RedisCluster

        return RedisCluster.from_url(target.url, **options)
    from redis.asyncio import BlockingConnectionPool, Redis

    if max_connections is None:
        return Redis.from_url(target.url, **options)
    wait = socket_timeout if socket_timeout is not None else connect_timeout
    pool = BlockingConnectionPool.from_url(target.url, timeout=wait, **options)
    return Redis.from_pool(pool)  # the client owns the pool: aclose() closes its connections


_UNBOUNDED = 2**31


class Tag(str):
    """A hash tag made by :func:`tag` (a plain string is always escaped, whatever it holds)."""

    __slots__ = ()


def tag(*parts: str) -> Tag:
    """The hash tag of the parts: ``{a:b}`` (escaped), the same slot for every key that has it."""
    return Tag("{" + ":".join(p.translate(_ESCAPES) for p in parts) + "}")


def key(prefix: str, group: str, *parts: str) -> str:
    """``<prefix>:<group>:<part>...`` with every part escaped; pass a :func:`tag` as a part
    (it is kept as it is) to pin the key's slot."""
    out = [prefix, group]
    for part in parts:
        out.append(part if isinstance(part, Tag) else part.translate(_ESCAPES))
    return ":".join(out)


def redis_problem(exc: BaseException) -> str:
    """One line saying what went wrong talking to Redis (no traceback, no password)."""
    from redis import exceptions

    if isinstance(exc, exceptions.AuthenticationError | exceptions.AuthorizationError):
        return f"authentication refused: {exc}"
    if isinstance(exc, exceptions.TimeoutError):
        return "no answer in time (timeout)"
    if isinstance(exc, exceptions.ConnectionError):
        return f"cannot connect: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
    if isinstance(exc, exceptions.ResponseError):
        return f"Redis answered an error: {exc}"
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
